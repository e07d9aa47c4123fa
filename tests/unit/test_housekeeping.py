"""Housekeeping walks of the entity table: the retention sweep and the state gauges go step
by step (other tasks run between two steps) and find what a walk in one go finds."""

from __future__ import annotations

import asyncio
import itertools
import time
from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson
from prometheus_client import CollectorRegistry

from streams.agents.housekeeping import (
    SweepCursor,
    refresh_state_gauges,
    refresh_state_gauges_stepwise,
    retention_pass,
)
from streams.metrics import Metrics
from streams.retention import RetentionPolicy

DAY = 86400.0
POLICY = RetentionPolicy(closed_s=30 * DAY, untouched_s=180 * DAY)


def table(n: int, now: float) -> dict[bytes, bytes]:
    """``n`` records: every third a deal won 40 days ago (evictable), the others open deals
    changed yesterday; every fifth has an open episode of rule r1 (never evicted)."""
    data = {}
    for i in range(n):
        closed = i % 3 == 0 and i % 5 != 0
        age = 40 * DAY if closed else DAY
        state: dict[str, Any] = {
            "f": {"stage": "Won" if closed else "Proposal"}, "u": now - age, "p": i % 2,
            "q": [i % 2, i, now - age],
        }  # fmt: skip
        if i % 5 == 0:
            state["a"] = {"r1": {"id": f"a{i}", "seq": 1, "at": now - age}}
        data[f"deal:D-{i}".encode()] = orjson.dumps(state)
    return data


class Recorder:
    """A shipper that applies and records what it is given, and a task that counts how
    often it got to run while a walk was going on."""

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.submitted: list[list[bytes]] = []
        self.turns = 0
        self.turns_at_submit: list[int] = []

    async def submit(self, result: Any, ack: Any = None) -> None:
        for key, (_, blob) in result.writes.items():
            assert blob is None
            self.data.pop(key, None)
        self.submitted.append(list(result.writes))
        self.turns_at_submit.append(self.turns)

    async def other_task(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.turns += 1
            await asyncio.sleep(0)


class TP(NamedTuple):
    topic: str
    partition: int


def pulse_of(data: dict[bytes, bytes], shipper: Recorder, batch: int) -> Any:
    tps = [TP("crm.events", p) for p in (0, 1)]
    consumer = SimpleNamespace(
        assignment=lambda: tps, _committed_offset={tp: 1_000_000 for tp in tps}
    )
    app = SimpleNamespace(
        consumer=consumer, rebalancing=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=asyncio.Event())),
    )  # fmt: skip
    app.tables.recovery.completed.set()
    return SimpleNamespace(
        app=app, shipper=shipper, metrics=Metrics(CollectorRegistry()),
        settings=SimpleNamespace(events_topic="crm.events", retention_sweep_batch=batch),
        entity_table=SimpleNamespace(data=data),
        engine=SimpleNamespace(rules=SimpleNamespace(rules=[SimpleNamespace(id="r1")])),
    )  # fmt: skip


async def test_the_retention_sweep_goes_step_by_step_and_evicts_what_one_walk_would() -> None:
    now = time.time()
    data = table(2_300, now)
    expected = {k for i, k in enumerate(data) if i % 3 == 0 and i % 5 != 0}
    shipper = Recorder(data)
    pulse = pulse_of(data, shipper, batch=50_000)
    stop = asyncio.Event()
    other = asyncio.create_task(shipper.other_task(stop))
    await asyncio.sleep(0)
    evicted = await retention_pass(pulse, SweepCursor(), POLICY, step=500)
    stop.set()
    await other
    assert evicted == len(expected)
    assert set(data) == set(table(2_300, now)) - expected  # the rest stays
    assert [len(keys) for keys in shipper.submitted] == [
        sum(1 for i in range(s, min(s + 500, 2_300)) if i % 3 == 0 and i % 5 != 0)
        for s in range(0, 2_300, 500)
    ]  # one shipment per step of 500 records
    turns = shipper.turns_at_submit
    assert all(b > a for a, b in itertools.pairwise(turns))  # others ran between
    evicted_total = pulse.metrics.registry.get_sample_value(
        "crm_pulse_evicted_records_total", {"reason": "closed"}
    )
    assert evicted_total == len(expected)


async def test_a_pass_examines_at_most_the_sweep_batch_then_the_next_pass_goes_on() -> None:
    now = time.time()
    data = table(1_200, now)
    expected = {k for i, k in enumerate(data) if i % 3 == 0 and i % 5 != 0}
    shipper = Recorder(data)
    pulse = pulse_of(data, shipper, batch=700)
    cursor = SweepCursor()
    first = await retention_pass(pulse, cursor, POLICY, step=300)
    assert first == sum(1 for i in range(700) if i % 3 == 0 and i % 5 != 0)
    assert cursor.pos == 700
    second = await retention_pass(pulse, cursor, POLICY, step=300)
    assert first + second == len(expected)  # the walk ended: the rest of the table
    assert not expected & set(data)


async def test_no_step_evicts_while_a_rebalance_runs() -> None:
    now = time.time()
    data = table(1_000, now)
    shipper = Recorder(data)
    pulse = pulse_of(data, shipper, batch=50_000)
    pulse.app.rebalancing = True
    assert await retention_pass(pulse, SweepCursor(), POLICY, step=100) == 0
    assert len(data) == 1_000 and not shipper.submitted


async def test_state_gauges_stepwise_match_the_walk_in_one_go() -> None:
    now = time.time()
    data = table(1_234, now)
    data[b"lead:1"] = orjson.dumps({"f": {"a": {"r1": 1}}})  # a field named "a": no episode
    one_go = pulse_of(data, Recorder(data), batch=1)
    refresh_state_gauges(one_go)
    stepwise = pulse_of(data, Recorder(data), batch=1)
    await refresh_state_gauges_stepwise(stepwise, step=100)
    for pulse in (one_go, stepwise):
        get = pulse.metrics.registry.get_sample_value
        assert get("crm_pulse_tracked_records") == 1_235
        assert get("crm_pulse_active_alerts", {"rule": "r1"}) == len(range(0, 1_234, 5))
