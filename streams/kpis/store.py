"""Per-scope day buckets of KPI facts over any key-value mapping (a Faust table's data).

Keys (bytes): ``<scope>|<day>`` holds the facts of one UTC day of one scope;
``<scope>|meta`` the days present and the latest event time of the scope. Every window
is a merge of day buckets: flow facts of the days inside it, state deltas of every day up
to its end (the "at end of window" state is the running sum). Medians are exact: the
buckets keep the raw durations (bounded by the deals closed per scope and day).

Each scope's meta keeps, per input partition, the highest offset applied: input partitions
are read in order, so facts sent twice (a crash between send and commit replays the input
from the last committed offset) are recognised by their position and count once, at a
cost that does not grow with the number of events.

:meth:`KpiStore.apply` is total: a fact of the wrong shape (``invalid_fact``), dated
outside 1970-01-01 .. the latest day allowed (``out_of_range``) or that would push a sum
out of the exact integer range (``overflow``) is skipped and noted, the others apply.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.jsonbytes import dumps_kept
from streams.kpis.compute import Flow
from streams.kpis.fact_shape import (
    MAX_INT,
    InvalidFact,
    check_deltas,
    check_flow,
    int_in,
    usable_day,
)
from streams.kpis.facts import EventFacts
from streams.kpis.skips import Skips
from streams.kpis.windows import MAX_DAY, MIN_DAY, in_range

Writer = Callable[[bytes, bytes], None]
#: Most decoded table values :class:`KpiStore` keeps (a bucket or a meta, under a kilobyte
#: each for most scopes: some tens of MB at most; the cache starts over when full).
MAX_DECODED = 100_000


def _key(scope: str, suffix: str) -> bytes:
    return f"{scope}|{suffix}".encode()


def empty_bucket() -> dict[str, Any]:
    return {"d": {}}


@dataclass
class ApplyResult:
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    #: facts out of range or overflowing (noted in the skips with their reason)
    refused: int = 0
    #: earliest day whose windows changed (None when nothing changed)
    dirty_from: int | None = None


@dataclass
class ScopeData:
    """Decoded buckets of one scope, for computing windows."""

    scope: str
    days: list[int]
    buckets: dict[int, dict[str, Any]]
    last_event_day: int | None
    _prefix: list[dict[str, int]] | None = None

    def flow(self, start: int, end: int) -> Flow:
        f = Flow()
        for day in self.days[bisect_left(self.days, start) : bisect_left(self.days, end)]:
            b = self.buckets[day]
            f.new += b.get("n", 0)
            f.won += b.get("w", 0)
            f.won_cents += b.get("wc", 0)
            f.won_with_amount += b.get("wa", 0)
            f.cycles.extend(b.get("cy", ()))
            f.lost += b.get("l", 0)
            for pair, n in b.get("t", {}).items():
                f.transitions[pair] = f.transitions.get(pair, 0) + n
            f.activities += b.get("a", 0)
            for owner, n in b.get("ao", {}).items():
                f.activity_owners[owner] = f.activity_owners.get(owner, 0) + n
            f.responses.extend(b.get("r", ()))
        return f

    def state_at(self, last_day: int) -> dict[str, int]:
        """The state at the end of ``last_day`` (sum of deltas of every day up to it)."""
        if self._prefix is None:
            running: dict[str, int] = {}
            self._prefix = []
            for day in self.days:
                for comp, delta in self.buckets[day].get("d", {}).items():
                    running[comp] = running.get(comp, 0) + delta
                self._prefix.append(dict(running))
        i = bisect_right(self.days, last_day)
        return dict(self._prefix[i - 1]) if i else {}


@dataclass
class KpiStore:
    """Applies facts over ``data`` and reads it back decoded (writes go through ``write``)."""

    data: MutableMapping[bytes, bytes]
    write: Writer | None = None
    #: decoded values by key, with the very bytes object they were decoded from (or
    #: encoded to): a value is decoded once, and any other writer of ``data`` (a table
    #: recovery, a restart) is seen by identity. At most ``MAX_DECODED`` entries.
    _decoded: dict[bytes, tuple[bytes, Any]] = field(default_factory=dict)

    def _put(self, key: bytes, value: Any) -> None:
        """Write ``value`` encoded; the caller hands over ``value`` (kept decoded)."""
        raw = dumps_kept(value)
        if self.write is None:
            self.data[key] = raw
        else:
            self.write(key, raw)
        self._keep(key, raw, value)

    def _keep(self, key: bytes, raw: bytes, value: Any) -> None:
        if len(self._decoded) >= MAX_DECODED:
            self._decoded.clear()
        self._decoded[key] = (raw, value)

    def _get(self, key: bytes) -> Any:
        """The decoded value of ``key`` (shared: not to be modified unless written back),
        ``None`` when missing; raises on bytes that are not JSON."""
        raw = self.data.get(key)
        if not raw:
            return None
        hit = self._decoded.get(key)
        if hit is not None and hit[0] is raw:
            return hit[1]
        value = orjson.loads(raw)
        self._keep(key, raw, value)
        return value

    def meta(self, scope: str) -> dict[str, Any]:
        meta = self._get(_key(scope, "meta"))
        return meta if meta is not None else {"days": [], "last": None, "hw": {}}

    def scopes(self) -> list[str]:
        return sorted(
            k.decode().rpartition("|")[0] for k in list(self.data.keys()) if k.endswith(b"|meta")
        )

    def apply(
        self,
        scope: str,
        events: Iterable[EventFacts],
        late_before: int,
        last_day: int = MAX_DAY,
        skips: Skips | None = None,
    ) -> ApplyResult:
        """Apply one scope's facts; events whose day is before ``late_before`` are late,
        after ``last_day`` (or before 1970) out of range. Every fact is checked before it
        changes anything: a bad one is skipped and noted in ``skips``, the others apply."""
        skips = skips if skips is not None else Skips()
        result = ApplyResult()
        if not isinstance(events, list | tuple):
            skips.note("apply", "invalid_fact", "facts are not a list")
            return result
        meta = self.stored_meta(scope)
        high = meta["hw"]  # input partition -> highest offset applied
        touched: dict[int, dict[str, Any]] = {}
        changed: set[int] = set()
        last_ok = min(last_day, MAX_DAY)
        last_seen = meta["last"]
        applied = 0
        dirty_from: int | None = None
        for event in events:
            try:
                position, day, flows, raw_deltas = event
                if type(day) is not int or not -MAX_INT <= day <= MAX_INT:
                    day = int_in(day, -MAX_INT)
                if position is not None:
                    partition, offset = position[0], position[1]
                    if type(partition) is not int or not 0 <= partition <= MAX_INT:
                        partition = int_in(partition, 0)
                    if type(offset) is not int or not 0 <= offset <= MAX_INT:
                        offset = int_in(offset, 0)
                    partition = _PARTITIONS.get(partition) or str(partition)
                if not isinstance(flows, list):
                    raise InvalidFact("flows are not a list")
                for item in flows:
                    check_flow(item)
                deltas = check_deltas(raw_deltas)
            except (InvalidFact, TypeError, ValueError, IndexError, KeyError) as exc:
                skips.note("apply", "invalid_fact", f"{type(exc).__name__}: {exc}")
                continue
            if position is not None:
                seen = high.get(partition)
                if seen is not None and offset <= seen:
                    result.duplicates += 1
                    continue
                high[partition] = offset
            if not MIN_DAY <= day <= last_ok:
                skips.note("apply", "out_of_range", f"day {day}")
                result.refused += 1
                continue
            if day < late_before:
                result.late += 1
                continue
            home = touched.get(day)
            if home is None:
                home = touched[day] = self._bucket(scope, day)
            # every sum this fact moves, computed before anything changes: a fact that
            # would leave one outside -MAX_INT..MAX_INT changes nothing
            sums = _new_sums(scope, deltas, touched, self._bucket)
            if sums is None or (flows and _won_overflows(home, flows)):
                skips.note("apply", "overflow", scope)
                result.refused += 1
                continue
            for item in flows:
                _add_flow(home, item)
            for per_comp, comp, value in sums:
                per_comp[comp] = value
            changed.add(day)
            low = day
            if deltas:
                changed.update(deltas)
                low = min(day, min(deltas))
            if last_seen is None or day > last_seen:
                last_seen = day
            applied += 1
            if dirty_from is None or low < dirty_from:
                dirty_from = low
        result.applied = applied
        result.dirty_from = dirty_from
        if applied == 0:
            return result
        meta["last"] = last_seen
        for day in changed:  # buckets only read (a refused fact's) are not written
            self._put(_key(scope, str(day)), touched[day])
        meta["days"] = sorted(changed.union(meta["days"]))
        self._put(_key(scope, "meta"), meta)
        return result

    def stored_meta(self, scope: str) -> dict[str, Any]:
        """The scope's meta, or a new one when missing or unreadable (kept days only)."""
        try:
            meta = self.meta(scope)
            days = meta["days"]
            if not isinstance(days, list):
                days = []
            elif days and not (usable_day(days[0]) and usable_day(days[-1])):
                # written sorted: checking both ends is enough unless something else wrote it
                days = sorted(d for d in days if usable_day(d))
            last = meta.get("last")
            hw = meta.get("hw", {})
            hw = dict(hw) if isinstance(hw, dict) else {}  # the decoded one is shared
            if not (isinstance(last, int) and in_range(last)):
                last = max(days) if days else None
            return {"days": days, "last": last, "hw": hw}
        except Exception:
            return {"days": [], "last": None, "hw": {}}

    def _bucket(self, scope: str, day: int) -> dict[str, Any]:
        """The day's bucket (shared with the decoded cache: modified only by
        :meth:`apply`, which writes back every bucket it modifies)."""
        try:
            b = self._get(_key(scope, str(day)))
        except orjson.JSONDecodeError:
            b = None
        if isinstance(b, dict) and isinstance(b.get("d"), dict):
            return b
        return empty_bucket()

    def load(self, scope: str) -> ScopeData:
        meta = self.stored_meta(scope)
        buckets = {day: self._bucket(scope, day) for day in meta["days"]}
        return ScopeData(scope, list(meta["days"]), buckets, meta["last"])


#: Text of the usual input partition numbers (a fact's position names its partition).
_PARTITIONS = {n: str(n) for n in range(1024)}


def _new_sums(
    scope: str,
    deltas: dict[int, dict[str, int]],
    touched: dict[int, dict[str, Any]],
    load: Callable[[str, int], dict[str, Any]],
) -> list[tuple[dict[str, int], str, int]] | None:
    """``(bucket sums, component, new sum)`` of every state delta, or ``None`` when one
    would leave ``-MAX_INT .. MAX_INT``; loads the buckets it needs into ``touched``."""
    out: list[tuple[dict[str, int], str, int]] = []
    for d, comps in deltas.items():
        bucket = touched.get(d)
        if bucket is None:
            bucket = touched[d] = load(scope, d)
        per_comp = bucket["d"]
        get = per_comp.get
        for comp, delta in comps.items():
            value = get(comp, 0) + delta
            if not -MAX_INT <= value <= MAX_INT:
                return None
            out.append((per_comp, comp, value))
    return out


def _won_overflows(home: dict[str, Any], items: list[list[Any]]) -> bool:
    """Would the won amounts of ``items`` push the day's won sum past ``MAX_INT``?
    (won cents are >= 0, see :func:`check_flow`: their sum bounds every partial sum)"""
    won = sum(item[1] for item in items if item[0] == "w" and item[1] is not None)
    return bool(won) and home.get("wc", 0) + won > MAX_INT


def _add_flow(b: dict[str, Any], item: list[Any]) -> None:
    kind = item[0]
    if kind == "n":
        b["n"] = b.get("n", 0) + 1
    elif kind == "w":
        b["w"] = b.get("w", 0) + 1
        if item[1] is not None:
            b["wc"] = b.get("wc", 0) + item[1]
            b["wa"] = b.get("wa", 0) + 1
        if item[2] is not None:
            b.setdefault("cy", []).append(item[2])
    elif kind == "l":
        b["l"] = b.get("l", 0) + 1
    elif kind == "t":
        t = b.setdefault("t", {})
        pair = f"{item[1]}>{item[2]}"
        t[pair] = t.get(pair, 0) + 1
    elif kind == "a":
        b["a"] = b.get("a", 0) + 1
        ao = b.setdefault("ao", {})
        ao[item[1]] = ao.get(item[1], 0) + 1
    elif kind == "r":
        b.setdefault("r", []).append(item[1])
