"""Salesforce Change Data Capture events, in the JSON a subscriber receives.

Accepted shapes: the event itself (``{"ChangeEventHeader": {...}, "StageName": ...}``, as the
Pub/Sub API clients and the Kafka connectors for Salesforce CDC decode it), or wrapped in
``{"payload": ...}`` or ``{"data": {"payload": ...}}`` (the Streaming API's CometD form).

- ``entityName`` picks the object's mapping; ``recordIds`` fans out: one ChangeEvent per
  id, the same fields for each.
- ``changeType``: CREATE -> create, UPDATE -> update, DELETE -> delete, UNDELETE -> create
  (the record is back, with its fields). ``GAP_CREATE``, ``GAP_UPDATE``, ``GAP_DELETE``,
  ``GAP_UNDELETE`` and ``GAP_OVERFLOW`` carry no field values: they become a :class:`Gap`
  (never data), the state of those records is unknown until a re-sync.
- Fields: on UPDATE, only those named by ``changedFields`` (the Pub/Sub API sends every
  field, null when unchanged) plus ``nulledFields`` set to null; on CREATE and UNDELETE,
  every non-null field. ``diffFields`` (long text sent as a diff, not a value) are left
  out of ``fields`` and named in ``changed``. Field lists in the Pub/Sub API's bitmap form
  (``0x...``) are not decoded here: then ``changed`` is left out and every non-null field
  of the body is taken.
- Compound fields (addresses, names, geolocations) are flattened one level with ``_``:
  ``BillingAddress: {City: ...}`` -> ``BillingAddress_City``, and
  ``changedFields: ["BillingAddress.City"]`` -> ``BillingAddress_City``.
- ``commitTimestamp`` (epoch ms) -> ``occurred_at``, ``commitUser`` -> ``actor``,
  ``event_id`` = ``sf:<transactionKey>:<sequenceNumber>:<record id>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.contracts.events import Op
from streams.sources.base import (
    EventDraft,
    Gap,
    Refused,
    SourceRefusalReason,
    Translation,
    epoch_ms,
    finish,
    id_text,
    parse_json,
    stable_id,
)
from streams.sources.config import SalesforceCdcSource
from streams.sources.fieldmap import MappedTranslator, find_map

R = SourceRefusalReason
_OPS = {"CREATE": Op.CREATE, "UPDATE": Op.UPDATE, "DELETE": Op.DELETE, "UNDELETE": Op.CREATE}
HEADER = "ChangeEventHeader"


def _event_of(doc: Any) -> dict[str, Any]:
    for path in ((), ("payload",), ("data", "payload")):
        node = doc
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(HEADER), dict):
            return node
    raise Refused(R.INVALID_PAYLOAD, f"no {HEADER} object: not a Salesforce change event")


def flatten(body: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level fields, compound ones (objects) flattened one level with ``_``."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == HEADER:
            continue
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                out[f"{name}_{sub}"] = subvalue
        else:
            out[name] = value
    return out


def _names(value: Any) -> list[str] | None:
    """A header's field list as flattened names; ``None`` when absent or in bitmap form."""
    if not isinstance(value, list):
        return None
    names = []
    for item in value:
        if not isinstance(item, str) or item.startswith("0x"):
            return None
        names.append(item.replace(".", "_"))
    return names


def _shown(ids: list[str]) -> str:
    if not ids:
        return "ids unknown"
    return ", ".join(ids[:10]) + ("…" if len(ids) > 10 else "")


class SalesforceCdcTranslator(MappedTranslator[SalesforceCdcSource]):
    """One Salesforce CDC source: its objects' mappings, compiled once."""

    def _translate(self, raw: bytes, received_at: datetime) -> Translation:
        event = _event_of(parse_json(raw, self.limits.max_event_bytes))
        header: dict[str, Any] = event[HEADER]
        entity_name = header.get("entityName")
        if not isinstance(entity_name, str) or not entity_name:
            raise Refused(R.INVALID_PAYLOAD, "ChangeEventHeader.entityName is absent")
        change_type = header.get("changeType")
        if not isinstance(change_type, str):
            raise Refused(R.INVALID_PAYLOAD, "ChangeEventHeader.changeType is absent")
        ids_raw = header.get("recordIds")
        if ids_raw is None:
            ids_raw = []
        if not isinstance(ids_raw, list):
            raise Refused(R.INVALID_PAYLOAD, "ChangeEventHeader.recordIds must be a list")
        ids = [i for i in (id_text(x) for x in ids_raw) if i is not None]
        fmap = find_map(self.maps, entity_name)
        occurred_at = epoch_ms(header.get("commitTimestamp"))
        tx, seq = header.get("transactionKey"), header.get("sequenceNumber")
        if change_type.startswith("GAP_"):
            gap = Gap(
                source_id=self.source_id,
                entity=fmap.entity if fmap is not None else None,
                entity_ids=tuple(ids),
                change_type=change_type,
                detail=f"{change_type} on {entity_name} ({_shown(ids)}): the records' state is "
                "unknown until a re-sync",
                crm_object=entity_name,
                event_id=stable_id("sf-gap", tx, seq, entity_name),
                occurred_at=occurred_at,
            )
            return Translation(gaps=[gap])
        op = _OPS.get(change_type)
        if op is None:
            raise Refused(R.UNSUPPORTED_OPERATION, f"changeType {change_type!r} is not translated")
        if fmap is None:
            raise Refused(R.UNKNOWN_OBJECT, f"object {entity_name} is not mapped")
        if not ids:
            raise Refused(R.MISSING_ID, "ChangeEventHeader.recordIds is empty")
        if occurred_at is None:
            raise Refused(R.MISSING_ID, "ChangeEventHeader.commitTimestamp is absent")
        if not isinstance(tx, str) or not tx or seq is None:
            raise Refused(R.MISSING_ID, "transactionKey and sequenceNumber are required")
        flat = flatten(event)
        changed_names = _names(header.get("changedFields"))
        nulled = _names(header.get("nulledFields")) or []
        diffs = set(_names(header.get("diffFields")) or ())
        body: dict[str, Any]
        changed: list[str] | None = None
        if op is Op.DELETE:
            body = {}
        elif op is Op.UPDATE and changed_names is not None:
            wanted = set(changed_names) | set(nulled)
            body = {k: v for k, v in flat.items() if k in wanted and k not in diffs}
            for name in nulled:
                body[name] = None
            changed = fmap.names([*changed_names, *(n for n in nulled if n not in changed_names)])
        else:
            body = {k: v for k, v in flat.items() if v is not None and k not in diffs}
            for name in nulled:
                body[name] = None
        fields = fmap.fields(body)
        actor = id_text(header.get("commitUser"))
        owner = fmap.owner(body)
        out = Translation()
        for record_id in dict.fromkeys(ids):
            draft = EventDraft(
                event_id=stable_id("sf", tx, seq, record_id),
                source=self.source_id,
                entity=fmap.entity,
                entity_id=record_id,
                op=op,
                occurred_at=occurred_at,
                fields=fields,
                actor=actor,
                owner_id=owner,
                changed=changed,
            )
            out.events.append(finish(draft, received_at, self.limits))
        return out
