"""HubSpot webhook batches (a JSON array of up to 100 events per request).

The signature (``X-HubSpot-Signature-v3``) is checked by the HTTP transport before this
runs (:mod:`streams.sources.signatures`). Each event of the batch is translated on its
own: a bad one is refused (its JSON as the refusal's bytes), the others go on.

``subscriptionType`` is ``object.<change>`` (the object named by ``objectTypeId``: ``0-1``
contact, ``0-2`` company, ``0-3`` deal, ``0-5`` ticket, ``0-27`` task, ``0-46`` note,
``0-47`` meeting, ``0-48`` call, ``0-49`` email; a custom object by its own id) or the
legacy ``<object>.<change>`` (``deal.propertyChange``). Changes:

- ``creation`` -> create with no fields (HubSpot sends the properties as separate
  ``propertyChange`` events). ``restore`` -> update with no fields: the record is back
  and keeps the fields CRM Pulse knew (a create would replace them with none).
- ``propertyChange`` -> update of one field: ``{propertyName: propertyValue}``,
  ``changed: [propertyName]``; the mapping's value maps turn deal stage ids into names;
  when ``propertyName`` is the owner field the event's ``owner_id`` is the new owner.
- ``deletion`` and ``privacyDeletion`` -> delete.
- ``merge`` -> delete of every merged record except the one that remains
  (``newObjectId``, else ``primaryObjectId``), and an update of that one with
  ``merged_object_ids``.
- anything else (``associationChange``…) is refused as ``unsupported_operation``.

``occurredAt`` (epoch ms) -> ``occurred_at``; ``sourceId`` (or ``changeSource``) ->
``actor``; ``event_id`` = ``hs:<portalId>:<subscriptionId>:<eventId>:<occurredAt>:<objectId>``
(HubSpot's ``eventId`` alone is not unique; a retry keeps all of these).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.contracts.events import Op
from streams.sources.base import (
    EventDraft,
    Refusal,
    Refused,
    SourceRefusalReason,
    Translation,
    epoch_ms,
    finish,
    id_text,
    item_bytes,
    parse_json,
    stable_id,
)
from streams.sources.config import HubspotWebhookSource
from streams.sources.fieldmap import FieldMap, MappedTranslator, find_map

R = SourceRefusalReason
#: HubSpot's object type ids of the standard objects -> the name the mapping uses.
OBJECT_TYPES = {
    "0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket", "0-7": "product",
    "0-8": "line_item", "0-27": "task", "0-46": "note", "0-47": "meeting", "0-48": "call",
    "0-49": "email",
}  # fmt: skip
#: Most events one request may carry (HubSpot sends at most 100).
MAX_BATCH = 1000
MERGED_IDS = "merged_object_ids"


class HubspotWebhookTranslator(MappedTranslator[HubspotWebhookSource]):
    """One HubSpot source: its objects' mappings, compiled once."""

    def _translate(self, raw: bytes, received_at: datetime) -> Translation:
        doc = parse_json(raw, self.limits.max_event_bytes * 4)
        items = doc if isinstance(doc, list) else [doc]
        if len(items) > MAX_BATCH:
            raise Refused(R.TOO_LARGE, f"{len(items)} events in one request (at most {MAX_BATCH})")
        out = Translation()
        for index, item in enumerate(items):
            try:
                out.extend(self._item(item, received_at))
            except Refused as exc:
                detail = f"event {index + 1} of {len(items)}: {exc.detail}"
                out.refusals.append(Refusal(exc.reason, detail[:1000], item_bytes(item)))
            except Exception as exc:  # never raise: one item's defect refuses that item
                detail = f"event {index + 1} of {len(items)}: {type(exc).__name__}"
                out.refusals.append(Refusal(R.TRANSLATOR_ERROR, detail, item_bytes(item)))
        return out

    def _object(self, item: Mapping[str, Any], prefix: str) -> FieldMap:
        type_id = item.get("objectTypeId")
        type_id = str(type_id) if type_id is not None else None
        names = (OBJECT_TYPES.get(type_id or ""), type_id) if prefix == "object" else (prefix,)
        fmap = find_map(self.maps, *names)
        if fmap is None:
            shown = next((n for n in names if n), prefix)
            raise Refused(R.UNKNOWN_OBJECT, f"HubSpot object {shown} is not mapped")
        return fmap

    def _item(self, item: Any, received_at: datetime) -> Translation:
        if not isinstance(item, dict):
            raise Refused(R.INVALID_PAYLOAD, "a HubSpot webhook event is a JSON object")
        kind = item.get("subscriptionType")
        if not isinstance(kind, str) or "." not in kind:
            raise Refused(R.INVALID_PAYLOAD, "subscriptionType must be <object>.<change>")
        prefix, change = kind.split(".", 1)
        if change not in ("creation", "propertyChange", "deletion", "privacyDeletion",
                          "merge", "restore"):  # fmt: skip
            raise Refused(R.UNSUPPORTED_OPERATION, f"subscriptionType {kind!r} is not translated")
        fmap = self._object(item, prefix)
        occurred_at = epoch_ms(item.get("occurredAt"))
        if occurred_at is None:
            raise Refused(R.MISSING_ID, "occurredAt (epoch ms) is absent")
        actor = id_text(item.get("sourceId")) or id_text(item.get("changeSource"))
        base = (item.get("portalId"), item.get("subscriptionId"), item.get("eventId"),
                item.get("occurredAt"))  # fmt: skip

        def draft(
            entity_id: str,
            op: Op,
            fields: dict[str, Any],
            changed: list[str] | None = None,
            owner: str | None = None,
        ) -> EventDraft:
            return EventDraft(
                event_id=stable_id("hs", *base, entity_id), source=self.source_id,
                entity=fmap.entity, entity_id=entity_id, op=op, occurred_at=occurred_at,
                fields=fields, actor=actor, owner_id=owner, changed=changed,
            )  # fmt: skip

        drafts: list[EventDraft] = []
        if change == "merge":
            drafts = self._merge(item, draft)
        else:
            object_id = id_text(item.get("objectId"))
            if object_id is None:
                raise Refused(R.MISSING_ID, "objectId is absent")
            if change == "propertyChange":
                name = item.get("propertyName")
                if not isinstance(name, str) or not name:
                    raise Refused(R.INVALID_PAYLOAD, "propertyChange without propertyName")
                raw_fields = {name: item.get("propertyValue")}
                owner = fmap.owner(raw_fields)
                fields = fmap.fields(raw_fields)
                drafts.append(draft(object_id, Op.UPDATE, fields, fmap.names([name]), owner))
            elif change in ("deletion", "privacyDeletion"):
                drafts.append(draft(object_id, Op.DELETE, {}))
            elif change == "restore":
                drafts.append(draft(object_id, Op.UPDATE, {}))
            else:  # creation
                drafts.append(draft(object_id, Op.CREATE, {}))
        out = Translation()
        for one in drafts:
            out.events.append(finish(one, received_at, self.limits))
        return out

    def _merge(self, item: Mapping[str, Any], draft: Any) -> list[EventDraft]:
        merged = item.get("mergedObjectIds")
        if not isinstance(merged, list):
            raise Refused(R.INVALID_PAYLOAD, "merge without mergedObjectIds")
        survivor = id_text(item.get("newObjectId")) or id_text(item.get("primaryObjectId"))
        if survivor is None:
            raise Refused(R.MISSING_ID, "merge without primaryObjectId")
        gone = [i for i in (id_text(x) for x in merged) if i is not None]
        primary = id_text(item.get("primaryObjectId"))
        if primary is not None:
            gone.append(primary)
        gone = [i for i in dict.fromkeys(gone) if i != survivor]
        drafts = [draft(i, Op.DELETE, {}) for i in gone]
        drafts.append(draft(survivor, Op.UPDATE, {MERGED_IDS: gone}, [MERGED_IDS]))
        return drafts
