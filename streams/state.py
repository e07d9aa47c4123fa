"""Entity state: the latest known fields of each record, kept compact for the changelog.

One entry per record, keyed ``b"<entity>:<entity_id>"`` and stored as orjson bytes::

    {"f": {...fields...}, "o": owner_id, "c": created_at (epoch s), "u": updated_at (epoch s),
     "ids": [recent event ids], "r": {rule_id: rule state}, "a": {rule_id: open episode},
     "x": true when deleted, "q": [partition, offset, ingest time (epoch s)] of the last
     input record applied}

Replay protection, in this order (:func:`replayed`, then the event ids, then
:func:`out_of_order`):

* exact replay: an input record at or before the position ``q`` of the record's state was
  applied already (a catch-up after a crash, kill or rebalance re-reads from the last
  committed offset, which is never after a written state): skipped, whatever its event id;
* redelivery by the source (the same ``event_id`` at a new offset): caught while it is one
  of the record's last ``dedup_window`` event ids;
* out of order: a change whose ``occurred_at`` is older than the record's last applied
  change is not merged over the newer state. So a redelivered event is applied twice only
  if more than ``dedup_window`` changes of the same record with the very same
  ``occurred_at`` were applied in between.
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


def replayed(state: Mapping[str, Any], position: tuple[int, int]) -> bool:
    """``True`` when the input record at ``position`` was applied to ``state`` already: same
    input partition, offset at or before the last one applied (partitions are read in
    order; a record's events all live on its key's partition)."""
    last = state.get("q")
    return last is not None and last[0] == position[0] and position[1] <= last[1]


def applied_at(position: tuple[int, int], ingested: float) -> list[Any]:
    """The ``q`` entry of a state that just applied the input record at ``position``."""
    return [position[0], position[1], round(ingested, 3)]


def out_of_order(state: Mapping[str, Any], occurred: float) -> bool:
    """``True`` when a change that occurred at ``occurred`` (epoch s) is older than the last
    change applied to the record: it is not merged over the newer state."""
    last = state.get("u")
    return last is not None and occurred < float(last)


def remember_event(state: EntityState, event_id: str, window: int) -> bool:
    """Record ``event_id``; ``False`` when it was already seen (a duplicate)."""
    ids: list[str] = state.setdefault("ids", [])
    if event_id in ids:
        return False
    if window > 0:
        ids.append(event_id)
        del ids[:-window]
    return True
