"""The typed state of one subject (a CRM record or a KPI rule series) and its one codec.

A state is one entry of the entity table, keyed ``b"<entity>:<entity_id>"`` (records) or
``b"kpi:<series>"`` (KPI rule series), stored as compact orjson bytes whose short keys are
the changelog format (kept byte-compatible, so existing changelogs recover)::

    {"f": {...fields...}, "ids": [recent event ids], "q": [partition, offset, ingest time
     (epoch s)] of the last input record applied, "u": updated_at (epoch s), "c": created_at
     (epoch s), "o": owner_id, "x": true when deleted, "r": {rule_id: rule state},
     "a": {rule_id: open episode}, "t": {rule_id: rule type}, "p": changelog partition,
     "cut": [names of fields cut to fit the state cap], "k": last KPI point (series)}

:meth:`EntityState.decode` and :meth:`EntityState.encode` are the only places that know
these keys. Keys this version does not know are kept as they are (``extra``). Decoding
checks no types: a stored value of the wrong type raises where it is used, and the record
is isolated there (dead-lettered by the change path, skipped by the timer scan).

Replay protection, in this order (:meth:`replayed`, then the event ids, then
:meth:`out_of_order`): an input record at or before the position ``q`` was applied already
(a catch-up after a crash, kill or rebalance); the same ``event_id`` is caught while it is
one of the record's last ``dedup_window`` event ids; a change older than the record's last
applied change is never merged over the newer state.

**Size cap.** A state is one changelog record, so it must fit the broker's message limit:
:meth:`encode` keeps it under ``max_bytes`` (``CRM_PULSE_STATE_MAX_BYTES``, 512 KiB by
default) by cutting the largest field values, one at a time from the largest: a string
keeps its first characters followed by ``"…[cut: N chars]"``, any other value becomes
``"[cut: N bytes of JSON]"``; their names are listed under ``"cut"``. Rules then see the cut
value. Encoding never raises (:mod:`streams.jsonbytes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.contracts.events import ChangeEvent, Op
from streams.jsonbytes import dumps, dumps_kept

#: Default cap of one encoded state (bytes): half of Kafka's default 1 MiB message limit.
STATE_MAX_BYTES = 512 * 1024
#: What a cut string keeps at least (characters).
_CUT_KEEP = 200
_KNOWN = frozenset({"f", "ids", "q", "u", "c", "o", "x", "r", "a", "t", "p", "cut", "k"})
_EMPTY: Mapping[str, Any] = {}


class EntityState:
    """The state of one subject. Changed by assignment only (a shallow :meth:`copy` is a
    snapshot the judge can fall back to when a record fails)."""

    __slots__ = (
        "applied", "created", "cut", "deleted", "episodes", "extra", "fields", "ids",
        "kinds", "kpi", "owner", "partition", "rules", "updated",
    )  # fmt: skip

    def __init__(
        self,
        fields: dict[str, Any] | None = None,
        ids: list[str] | None = None,
        *,
        applied: list[Any] | None = None,
        updated: float | None = None,
        created: float | None = None,
        owner: str | None = None,
        deleted: bool = False,
        rules: dict[str, Any] | None = None,
        episodes: dict[str, Any] | None = None,
        kinds: dict[str, str] | None = None,
        partition: int | None = None,
        cut: list[str] | None = None,
        kpi: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        #: the record's fields (``None``: a KPI series, which has none).
        self.fields = fields
        #: the last ``dedup_window`` event ids applied.
        self.ids = ids
        #: ``[partition, offset, ingest time]`` of the last input record applied.
        self.applied = applied
        #: ``occurred_at`` of the last applied change / of the first one (epoch s).
        self.updated = updated
        self.created = created
        self.owner = owner
        self.deleted = deleted
        #: rule id -> rule state (counters, deadlines ``due``); never ``None`` in use.
        self.rules: dict[str, Any] = rules if rules is not None else {}
        #: rule id -> open alert episode (:mod:`streams.judge.episodes`).
        self.episodes: dict[str, Any] = episodes if episodes is not None else {}
        #: rule id -> the rule type that wrote its state and episode.
        self.kinds: dict[str, str] = kinds if kinds is not None else {}
        #: the changelog partition of the state (timer scans judge their own only).
        self.partition = partition
        self.cut = cut
        #: the last KPI point of a series (``KpiPoint.to_dict``).
        self.kpi = kpi
        self.extra = extra

    @classmethod
    def new_record(cls) -> EntityState:
        return cls({}, [])

    def copy(self) -> EntityState:
        """A shallow copy: containers are shared and must be replaced, never mutated."""
        twin = EntityState.__new__(EntityState)
        twin.fields, twin.ids, twin.applied = self.fields, self.ids, self.applied
        twin.updated, twin.created, twin.owner = self.updated, self.created, self.owner
        twin.deleted, twin.rules, twin.episodes = self.deleted, self.rules, self.episodes
        twin.kinds, twin.partition, twin.cut = self.kinds, self.partition, self.cut
        twin.kpi, twin.extra = self.kpi, self.extra
        return twin

    # -- the codec: the only place that knows the short keys --------------------------------

    @classmethod
    def decode(cls, blob: bytes | None) -> EntityState | None:
        """The state stored as ``blob`` (``None``: none, or not a JSON object)."""
        if blob is None:
            return None
        return cls.from_dict(orjson.loads(blob))

    @classmethod
    def from_dict(cls, data: Any) -> EntityState | None:
        if not isinstance(data, dict):
            return None
        get = data.get
        state = EntityState.__new__(EntityState)  # no keyword binding: once per subject read
        state.fields, state.ids, state.applied = get("f"), get("ids"), get("q")
        state.updated, state.created, state.owner = get("u"), get("c"), get("o")
        state.deleted = bool(get("x"))
        state.rules, state.episodes, state.kinds = get("r") or {}, get("a") or {}, get("t") or {}
        state.partition, state.cut, state.kpi = get("p"), get("cut"), get("k")
        state.extra = None if data.keys() <= _KNOWN else {
            k: v for k, v in data.items() if k not in _KNOWN
        }  # fmt: skip
        return state

    def as_dict(self) -> dict[str, Any]:
        """The stored form (empty rule states, episodes and tags are left out)."""
        data: dict[str, Any] = {}
        if self.fields is not None:
            data["f"] = self.fields
        if self.ids is not None:
            data["ids"] = self.ids
        if self.applied is not None:
            data["q"] = self.applied
        if self.updated is not None:
            data["u"] = self.updated
        if self.created is not None:
            data["c"] = self.created
        if self.owner is not None:
            data["o"] = self.owner
        if self.deleted:
            data["x"] = True
        if self.rules:
            data["r"] = self.rules
        if self.episodes:
            data["a"] = self.episodes
        if self.kinds:
            data["t"] = self.kinds
        if self.partition is not None:
            data["p"] = self.partition
        if self.cut:
            data["cut"] = self.cut
        if self.kpi is not None:
            data["k"] = self.kpi
        if self.extra:
            data.update(self.extra)
        return data

    def encode(self, max_bytes: int = STATE_MAX_BYTES) -> bytes:
        return encode_dict(self.as_dict(), max_bytes)

    # -- replay protection --------------------------------------------------------------

    def replayed(self, position: tuple[int, int]) -> bool:
        """``True`` when the input record at ``position`` was applied already: same input
        partition, offset at or before the last one applied (partitions are read in order;
        a record's events all live on its key's partition)."""
        last = self.applied
        return last is not None and last[0] == position[0] and position[1] <= last[1]

    def out_of_order(self, occurred: float) -> bool:
        """``True`` when a change that occurred at ``occurred`` (epoch s) is older than the
        last change applied to the record: it is not merged over the newer state."""
        last = self.updated
        return last is not None and occurred < float(last)

    def applied_ingest_time(self) -> float | None:
        applied = self.applied
        return float(applied[2]) if applied and len(applied) > 2 else None

    # -- timers ---------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """Earliest timer deadline: a rule's ``due`` (when no episode of that rule is open)
        or an open episode's next reminder; ``0.0`` for a deleted record with open episodes
        (they resolve at the next scan)."""
        episodes = self.episodes
        if self.deleted and episodes:
            return 0.0
        if not episodes and not self.rules:
            return None
        dues = [
            float(rs["due"]) for rid, rs in self.rules.items()
            if isinstance(rs, Mapping) and rs.get("due") is not None and rid not in episodes
        ]  # fmt: skip
        dues.extend(float(ep["next"]) for ep in episodes.values() if ep.get("next") is not None)
        return min(dues, default=None)


def decode_dict(blob: bytes | None) -> dict[str, Any] | None:
    """The stored form itself, for scans that only read a few keys (gauges, retention)."""
    if blob is None:
        return None
    value = orjson.loads(blob)
    return value if isinstance(value, dict) else None


def state_of(state: Mapping[str, Any] | EntityState) -> EntityState:
    """``state`` typed (a stored-form mapping is read with :meth:`EntityState.from_dict`)."""
    if isinstance(state, EntityState):
        return state
    typed = EntityState.from_dict(dict(state))
    assert typed is not None
    return typed


def record_key(entity: str, entity_id: str) -> bytes:
    return f"{entity}:{entity_id}".encode()


def applied_at(position: tuple[int, int], ingested: float) -> list[Any]:
    """The ``applied`` entry of a state that just applied the input record at ``position``."""
    return [position[0], position[1], round(ingested, 3)]


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
        given = event.fields
        after.update(given)
        get = before.get  # a given field's value after the merge is the given one
        return after, frozenset([n for n, v in given.items() if get(n) != v])
    else:
        return dict(before), frozenset()
    return after, frozenset(n for n in names if base.get(n) != after.get(n))


# -- the size cap (on the stored form) ----------------------------------------------------


def encode_dict(state: dict[str, Any], max_bytes: int = STATE_MAX_BYTES) -> bytes:
    """The stored form as JSON bytes of at most ``max_bytes`` (see the module docstring)."""
    if state.get("cut"):
        state = _still_cut(state)
    blob = dumps_kept(state)  # kept by the table: right-sized (see streams.jsonbytes)
    if len(blob) <= max_bytes:
        return blob
    return dumps_kept(fit_state(state, len(blob), max_bytes))


def _is_cut(value: Any) -> bool:
    return isinstance(value, str) and ("…[cut: " in value or value.startswith("[cut: "))


def _still_cut(state: dict[str, Any]) -> dict[str, Any]:
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


def fit_state(state: dict[str, Any], size: int, max_bytes: int) -> dict[str, Any]:
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
