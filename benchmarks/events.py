"""The benchmark workload: realistic CRM change events, generated once, held in memory.

:class:`BenchSimulator` is :class:`streams.simulator.DealSimulator` with an O(1) choice of
the deal to update (the base class lists every open deal per event, fine for the demo's
200 deals, far too slow for 100k), so half a million events are generated in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.simulator import DealSimulator, default_owners

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class _IndexedDeals(dict[str, Any]):
    """A dict of open deals that also keeps its keys in a list for O(1) random choice."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_list: list[str] = []
        self._pos: dict[str, int] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._pos:
            self._pos[key] = len(self.keys_list)
            self.keys_list.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        index = self._pos.pop(key)
        last = self.keys_list.pop()
        if last != key:
            self.keys_list[index] = last
            self._pos[last] = index


@dataclass
class BenchSimulator(DealSimulator):
    """The demo simulator, scaled: O(1) pick of the deal to change."""

    _deals: dict[str, Any] = field(default_factory=_IndexedDeals, init=False, repr=False)

    def next_event(self, at: datetime) -> tuple[bytes, bytes]:
        rng = self._rng
        if rng.random() < self.dirty_rate / 10:
            broken = rng.choice((b'{"event_id": "x", "entity": ', b'{"source": "simulator"}'))
            return b"broken", broken
        deals = self._deals
        assert isinstance(deals, _IndexedDeals)
        if not deals or (len(deals) < self.open_deals_target and rng.random() < 0.35):
            event = self._create(at)
        else:
            deal = deals[deals.keys_list[rng.randrange(len(deals.keys_list))]]
            event = self._update(deal, at)
        return event["entity_id"].encode(), orjson.dumps(event)


@dataclass(frozen=True)
class Workload:
    """Pre-generated events: keys, values and the event id of each (``None`` if broken)."""

    keys: list[bytes]
    values: list[bytes]
    event_ids: list[str | None]

    def __len__(self) -> int:
        return len(self.values)

    @property
    def avg_bytes(self) -> float:
        return sum(len(v) for v in self.values) / len(self.values) if self.values else 0.0


def _event_id(value: bytes) -> str | None:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    event_id = doc.get("event_id") if isinstance(doc, dict) else None
    return event_id if isinstance(event_id, str) else None


def generate(
    count: int, *, deals: int = 100_000, owners: int = 200, seed: int = 7, step_s: float = 1.0
) -> Workload:
    """``count`` events over up to ``deals`` open deals and ``owners`` sales reps."""
    sim = BenchSimulator(seed=seed, owners=default_owners(owners), open_deals_target=deals)
    keys: list[bytes] = []
    values: list[bytes] = []
    ids: list[str | None] = []
    at = START
    step = timedelta(seconds=step_s)
    for _ in range(count):
        key, value = sim.next_event(at)
        keys.append(key)
        values.append(value)
        ids.append(_event_id(value))
        at += step
    return Workload(keys, values, ids)
