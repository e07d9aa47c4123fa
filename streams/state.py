"""Entity state: the latest known fields of each record, kept compact for the changelog.

One entry per record, keyed ``b"<entity>:<entity_id>"`` and stored as orjson bytes::

    {"f": {...fields...}, "o": owner_id, "c": created_at (epoch s), "u": updated_at (epoch s),
     "ids": [recent event ids], "r": {rule_id: rule state}, "a": {rule_id: open episode},
     "x": true when deleted, "q": [partition, offset, ingest time (epoch s)] of the last
     input record applied, "cut": [names of fields cut to fit the state cap]}

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

**Size cap.** A state is one changelog record, so it must fit the broker's message limit.
:func:`encode_state` keeps it under ``max_bytes`` (``CRM_PULSE_STATE_MAX_BYTES``, 512 KiB by
default): when the encoding is larger, the largest field values are cut, one at a time from
the largest, until it fits: a string keeps its first characters followed by
``"…[cut: N chars]"``, any other value becomes ``"[cut: N bytes of JSON]"``; their names are
listed under ``"cut"``. Rules then see the cut value (a later event that sends the full
value again counts as a change of that field). Encoding never raises
(:mod:`streams.jsonbytes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.contracts.events import ChangeEvent, Op
from streams.jsonbytes import dumps, dumps_kept

EntityState = dict[str, Any]

#: Default cap of one encoded state (bytes): half of Kafka's default 1 MiB message limit.
STATE_MAX_BYTES = 512 * 1024
#: What a cut string keeps at least (characters).
_CUT_KEEP = 200


def record_key(entity: str, entity_id: str) -> bytes:
    return f"{entity}:{entity_id}".encode()


def decode_state(blob: bytes | None) -> EntityState | None:
    if blob is None:
        return None
    value = orjson.loads(blob)
    return value if isinstance(value, dict) else None


def encode_state(state: EntityState, max_bytes: int = STATE_MAX_BYTES) -> bytes:
    """The state as JSON bytes of at most ``max_bytes`` (see the module docstring)."""
    if state.get("cut"):
        state = _still_cut(state)
    blob = dumps_kept(state)  # kept by the table: right-sized (see streams.jsonbytes)
    if len(blob) <= max_bytes:
        return blob
    return dumps_kept(fit_state(state, len(blob), max_bytes))


def _is_cut(value: Any) -> bool:
    return isinstance(value, str) and ("…[cut: " in value or value.startswith("[cut: "))


def _still_cut(state: EntityState) -> EntityState:
    """``state`` whose ``cut`` lists only the fields still holding a cut value."""
    fields = state.get("f") or {}
    names = [n for n in state["cut"] if (n == "*" and not fields) or _is_cut(fields.get(n))]
    if names == state["cut"]:
        return state
    kept = {k: v for k, v in state.items() if k != "cut"}
    if names:
        kept["cut"] = names
    return kept


def _cut_value(value: Any, size: int, excess: int) -> str:
    if isinstance(value, str):
        keep = max(_CUT_KEEP, len(value) - excess - 64)
        if keep < len(value):
            return f"{value[:keep]}…[cut: {len(value) - keep} chars]"
    return f"[cut: {size} bytes of JSON]"


def fit_state(state: EntityState, size: int, max_bytes: int) -> EntityState:
    """A copy of ``state`` whose largest field values are cut until it encodes to at most
    ``max_bytes`` (when even the bookkeeping alone is larger, the fields are all cut)."""
    fields = dict(state.get("f") or {})
    sizes = sorted(((len(dumps(v)), k) for k, v in fields.items()), reverse=True)
    cut = list(state.get("cut") or ())
    fitted = dict(state)
    for field_size, name in sizes:
        if size <= max_bytes:
            break
        if field_size <= 64:
            continue
        replaced = _cut_value(fields[name], field_size, size - max_bytes)
        size -= field_size - len(dumps(replaced))
        fields[name] = replaced
        if name not in cut:
            cut.append(name)
    fitted["f"] = fields
    fitted["cut"] = cut[-100:]
    if len(dumps(fitted)) > max_bytes:  # the rest is too large: keep only the bookkeeping
        fitted["f"] = {}
        fitted["cut"] = ["*"]
        for name in ("r", "a"):
            if len(dumps(fitted.get(name))) > max_bytes // 4:
                fitted.pop(name, None)
    return fitted


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
