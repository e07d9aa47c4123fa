"""The declarative mapping source: any CRM that sends JSON, read with JMESPath.

The source's ``event`` block gives one JMESPath expression (the ``jmespath`` library) per
ChangeEvent field, evaluated on each item (the whole document, or each element of the
``items`` expression's list). ``object`` names the CRM object, looked up in the mapping
for its entity kind and field mapping; ``op``'s value goes through ``op_values``;
``occurred_at`` may be RFC 3339 text or epoch seconds or milliseconds (a number above
10^11 is milliseconds), and defaults to the time the input was received; ``event_id``
defaults to a hash of the item's JSON (a redelivery of the same bytes is deduplicated).
``fields`` must give an object (null counts as ``{}``), ``changed`` a list of names.
Expressions are compiled when the sources file is loaded; no code is imported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jmespath
import orjson
from jmespath.parser import ParsedResult

from streams.decode import DEFAULT_LIMITS, DecodeLimits
from streams.sources.base import (
    EventDraft,
    Refusal,
    Refused,
    SourceRefusalReason,
    Translation,
    finish,
    guarded,
    id_text,
    item_bytes,
    parse_json,
    stable_id,
)
from streams.sources.config import MappingSource
from streams.sources.fieldmap import MappedTranslator, find_map, value_key

R = SourceRefusalReason
MAX_ITEMS = 1000
_EXPRESSIONS = ("object", "entity_id", "op", "occurred_at", "event_id", "actor", "owner_id",
                "fields", "changed")  # fmt: skip


def event_time(value: Any) -> datetime | None:
    """RFC 3339 text (an offset, or none meaning UTC) or epoch seconds / milliseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class _Path:
    """A plain dotted path (``meta.entity``): what JMESPath returns for it, without its
    interpreter (a missing key or a non-object on the way gives null)."""

    def __init__(self, text: str) -> None:
        self.keys = tuple(text.split("."))

    def search(self, value: Any) -> Any:
        for key in self.keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value


def compile_expression(text: str) -> ParsedResult | _Path:
    """A JMESPath expression, compiled; plain dotted paths take a fast path."""
    return _Path(text) if _PATH.match(text) else jmespath.compile(text)


class MappingTranslator(MappedTranslator[MappingSource]):
    """One declarative source: its JMESPath expressions and mappings, compiled once."""

    def __init__(self, config: MappingSource, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
        super().__init__(config, limits)
        self.items = compile_expression(config.items) if config.items else None
        self.expr: dict[str, ParsedResult | _Path] = {
            name: compile_expression(text)
            for name in _EXPRESSIONS
            if (text := getattr(config.event, name)) is not None
        }
        self.op_values = dict(config.op_values)

    def _translate(self, raw: bytes, received_at: datetime) -> Translation:
        batched = self.items is not None
        doc = parse_json(raw, self.limits.max_event_bytes * (4 if batched else 1))
        if self.items is None:
            return self._item(doc, raw, received_at)
        items = self.items.search(doc)
        if not isinstance(items, list):
            raise Refused(R.INVALID_PAYLOAD, "the items expression did not give a list")
        if len(items) > MAX_ITEMS:
            raise Refused(R.TOO_LARGE, f"{len(items)} items (at most {MAX_ITEMS})")
        out = Translation()
        for index, item in enumerate(items):
            one = guarded(None, lambda item=item: self._item(item, None, received_at))
            for refusal in one.refusals:
                detail = f"item {index + 1} of {len(items)}: {refusal.detail}"
                one_raw = item_bytes(item)
                out.refusals.append(Refusal(refusal.reason, detail[:1000], one_raw))
            out.events.extend(one.events)
        return out

    def _get(self, name: str, item: Any) -> Any:
        expr = self.expr.get(name)
        if expr is None:
            return None
        try:
            return expr.search(item)
        except jmespath.exceptions.JMESPathError as exc:
            raise Refused(R.INVALID_PAYLOAD, f"{name}: {type(exc).__name__}: {exc}") from None

    def _item(self, item: Any, raw: bytes | None, received_at: datetime) -> Translation:
        if not isinstance(item, dict):
            raise Refused(R.INVALID_PAYLOAD, "an item must be a JSON object")
        crm_object = self._get("object", item)
        name = value_key(crm_object)
        fmap = find_map(self.maps, name) if name is not None else None
        if fmap is None:
            raise Refused(R.UNKNOWN_OBJECT, f"object {crm_object!r} is not mapped")
        entity_id = id_text(self._get("entity_id", item))
        if entity_id is None:
            raise Refused(R.MISSING_ID, "the entity_id expression gave no id")
        op_value = value_key(self._get("op", item))
        op = self.op_values.get(op_value) if op_value is not None else None
        if op is None:
            raise Refused(R.UNSUPPORTED_OPERATION, f"op {op_value!r} is not in op_values")
        occurred_at = received_at
        if "occurred_at" in self.expr:
            found = event_time(self._get("occurred_at", item))
            if found is None:
                raise Refused(R.MISSING_ID, "occurred_at gave no RFC 3339 text or epoch number")
            occurred_at = found
        fields_raw = self._get("fields", item)
        if fields_raw is None:
            fields_raw = {}
        if not isinstance(fields_raw, Mapping):
            raise Refused(R.INVALID_PAYLOAD, "the fields expression did not give an object")
        changed_raw = self._get("changed", item)
        changed = None
        if changed_raw not in (None, False, ""):
            if not isinstance(changed_raw, list) or not all(
                isinstance(c, str) for c in changed_raw
            ):
                raise Refused(R.INVALID_PAYLOAD, "the changed expression did not give names")
            changed = fmap.names(changed_raw)
        event_id = id_text(self._get("event_id", item))
        if event_id is None:
            body = raw or orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            event_id = "sha256:" + hashlib.sha256(body).hexdigest()[:40]
        owner = id_text(self._get("owner_id", item)) if "owner_id" in self.expr else None
        draft = EventDraft(
            event_id=stable_id("map", event_id, entity_id),
            source=self.source_id,
            entity=fmap.entity,
            entity_id=entity_id,
            op=op,
            occurred_at=occurred_at,
            fields=fmap.fields(fields_raw),
            actor=id_text(self._get("actor", item)),
            owner_id=owner or fmap.owner(fields_raw),
            changed=changed,
        )
        return Translation(events=[finish(draft, received_at, self.limits)])
