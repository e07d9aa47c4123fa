"""Entity state: the latest known fields of each record, kept compact for the changelog.

One entry per record, keyed ``b"<entity>:<entity_id>"`` and stored as orjson bytes::

    {"f": {...fields...}, "o": owner_id, "c": created_at (epoch s), "u": updated_at (epoch s),
     "ids": [recent event ids], "r": {rule_id: rule state}, "a": {rule_id: open episode},
     "x": true when deleted}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.contracts.events import ChangeEvent, Op
from streams.jsonbytes import dumps_kept

EntityState = dict[str, Any]


def record_key(entity: str, entity_id: str) -> bytes:
    return f"{entity}:{entity_id}".encode()


def decode_state(blob: bytes | None) -> EntityState | None:
    if blob is None:
        return None
    value = orjson.loads(blob)
    return value if isinstance(value, dict) else None


def encode_state(state: EntityState) -> bytes:
    return dumps_kept(state)  # kept by the table: right-sized (see streams.jsonbytes)


def merge_fields(
    before: Mapping[str, Any] | None, event: ChangeEvent
) -> tuple[dict[str, Any], frozenset[str]]:
    """The record after ``event`` and the names of the fields whose value changed.

    ``create`` replaces the record; ``update`` merges the given fields over it; ``delete``
    keeps the last fields (the state is flagged deleted). ``event.changed`` is trusted
    only for fields whose value really differs, so a no-op update changes nothing.
    """
    if before is None:  # a new record: every field it has is new
        after = dict(event.fields)
        return after, frozenset(after)
    if event.op is Op.CREATE:
        after = dict(event.fields)
        base: Mapping[str, Any] = before
        names: Iterable[str] = set(after) | set(base)
    elif event.op is Op.UPDATE:
        after = dict(before)
        after.update(event.fields)
        base = before
        names = event.fields.keys()
    else:
        return dict(before), frozenset()
    return after, frozenset(n for n in names if base.get(n) != after.get(n))


def remember_event(state: EntityState, event_id: str, window: int) -> bool:
    """Record ``event_id``; ``False`` when it was already seen (a duplicate)."""
    ids: list[str] = state.setdefault("ids", [])
    if event_id in ids:
        return False
    if window > 0:
        ids.append(event_id)
        del ids[:-window]
    return True
