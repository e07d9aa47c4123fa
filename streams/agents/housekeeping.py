"""The housekeeping timers: gauges that are computed, not counted, and retention.

Every ``housekeeping_interval_s`` it refreshes consumer lag per input partition (the
broker's highwater minus this worker's committed offset), open alert episodes per rule,
and the number of tracked records. Every ``retention_sweep_interval_s`` the retention sweep
examines the next slice of the entity table and evicts what :mod:`streams.retention` says
may go, through the shipper (tombstones ordered with every other state write).

Neither holds the event loop for long: both walk the table in steps of :data:`STEP` records
and let the other tasks run between two steps (a walk of 50,000 records in one go paused
the worker for tens of milliseconds, which every alert of that moment waited for).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.judge.state import decode_dict as decode_state
from streams.retention import RetentionPolicy, sweep
from streams.runtime.container import Runtime

log = logging.getLogger(__name__)

#: Records a housekeeping walk handles before it lets the other tasks run (about a
#: millisecond of work for the gauges, a few for the retention sweep).
STEP = 500


def lag_by_partition(
    highwaters: Mapping[int, int], committed: Mapping[int, int | None]
) -> dict[int, int]:
    """Records behind per partition: highwater (next offset to be written) minus the next
    offset this consumer will read (committed); nothing committed yet counts from 0."""
    return {
        partition: max(0, end - (committed.get(partition) or 0))
        for partition, end in highwaters.items()
    }


async def refresh_lag(pulse: Runtime) -> None:
    consumer = pulse.app.consumer
    if consumer is None:
        return
    topic = pulse.settings.events_topic
    tps = [tp for tp in consumer.assignment() if tp.topic == topic]
    gauge = pulse.metrics.consumer_lag
    if not tps:
        gauge.clear()
        return
    ends = await consumer.highwaters(*tps)
    lags = lag_by_partition(
        {tp.partition: int(end) for tp, end in ends.items()},
        {tp.partition: consumer._committed_offset.get(tp) for tp in tps},
    )
    gauge.clear()  # partitions revoked since the last pass disappear
    for partition, lag in sorted(lags.items()):
        gauge.labels(partition=str(partition)).set(lag)


#: How open episodes appear in an encoded state (orjson, no spaces; an empty ``a`` is never
#: stored). A record field named ``a`` can match too: that record is then decoded, no harm.
OPEN_EPISODES = b'"a":{"'


def open_episodes_by_rule(blobs: Iterable[Any], counts: Counter[str]) -> None:
    """Add the open episodes per rule of the encoded states ``blobs`` to ``counts``."""
    for blob in blobs:
        raw = bytes(blob)
        if OPEN_EPISODES not in raw:  # most records have none: no decoding (a byte search)
            continue
        state = decode_state(raw)
        if state is not None:
            counts.update(state.get("a", {}).keys())


def set_state_gauges(pulse: Runtime, tracked: int, open_by_rule: Counter[str]) -> None:
    """Set the tracked-records and open-episode gauges at once (a scrape never sees them
    half refreshed)."""
    m = pulse.metrics
    m.tracked_records.set(tracked)
    m.active_alerts.clear()  # rules dropped from the live set disappear
    for compiled in pulse.engine.rules.rules:
        m.active_alerts.labels(rule=compiled.id).set(open_by_rule.get(compiled.id, 0))


def refresh_state_gauges(pulse: Runtime) -> None:
    """Tracked records and open episodes per rule, from one pass over the entity states,
    in one go. (The KPI gauges are set by the KPI agent when it publishes snapshots:
    :mod:`streams.agents.kpis`.)"""
    data = pulse.entity_table.data
    open_by_rule: Counter[str] = Counter()
    open_episodes_by_rule(list(data.values()), open_by_rule)
    set_state_gauges(pulse, len(data), open_by_rule)


async def refresh_state_gauges_stepwise(pulse: Runtime, step: int = STEP) -> None:
    """:func:`refresh_state_gauges` over a snapshot of the states taken at the start,
    :data:`STEP` records at a time with the other tasks running in between; the gauges are
    set at the end, at once."""
    data = pulse.entity_table.data
    tracked = len(data)
    blobs = list(data.values())  # the states as they are now (the walk yields)
    open_by_rule: Counter[str] = Counter()
    for start in range(0, len(blobs), step):
        open_episodes_by_rule(blobs[start : start + step], open_by_rule)
        await asyncio.sleep(0)
    set_state_gauges(pulse, tracked, open_by_rule)


@dataclass
class SweepCursor:
    """Where the retention sweep is in its walk of the table (a snapshot of the keys)."""

    keys: list[bytes] = field(default_factory=list)
    pos: int = 0

    def next_slice(self, data: Mapping[bytes, object], size: int) -> list[bytes]:
        if self.pos >= len(self.keys):  # a new walk over the keys present now
            self.keys, self.pos = list(data.keys()), 0
        chunk = [bytes(k) for k in self.keys[self.pos : self.pos + size]]
        self.pos += size
        return chunk


def policy_of(pulse: Runtime) -> RetentionPolicy:
    s = pulse.settings
    return RetentionPolicy(
        closed_s=s.retention_closed_days * 86400.0,
        untouched_s=s.retention_untouched_days * 86400.0,
        closed_stages=tuple(s.closed_stages),
    )


def committed_offsets(pulse: Runtime) -> dict[int, int] | None:
    """Owned input partitions -> committed offset, or ``None`` while a rebalance or a
    recovery runs (nothing is evicted then)."""
    app = pulse.app
    consumer = app.consumer
    if consumer is None or app.rebalancing or not app.tables.recovery.completed.is_set():
        return None
    topic = pulse.settings.events_topic
    return {
        tp.partition: int(consumer._committed_offset.get(tp) or -1)
        for tp in consumer.assignment() if tp.topic == topic
    }  # fmt: skip


async def retention_pass(
    pulse: Runtime, cursor: SweepCursor, policy: RetentionPolicy, step: int = STEP
) -> int:
    """Examine the next slice of the table (``retention_sweep_batch`` records), :data:`STEP`
    records at a time; evict what may go. Returns the records evicted.

    Each step reads, judges and hands its tombstones to the shipper without awaiting in
    between (as every writer of the table does), so a newer state is never deleted by an
    older look; the other tasks run between two steps."""
    evicted = 0
    todo = pulse.settings.retention_sweep_batch
    while todo > 0:
        partitions = committed_offsets(pulse)  # again at each step: a rebalance may start
        if not partitions:
            return evicted
        data = pulse.entity_table.data
        keys = cursor.next_slice(data, min(step, todo))
        if not keys:
            return evicted
        todo -= len(keys)
        items = [(k, bytes(blob)) for k in keys if (blob := data.get(k)) is not None]
        swept = sweep(items, time.time(), policy, partitions)
        for reason, n in swept.evicted.items():
            pulse.metrics.evicted_records.labels(reason=reason).inc(n)
        if swept.result.writes:
            evicted += len(swept.result.writes)
            await pulse.shipper.submit(swept.result)
        if cursor.pos >= len(cursor.keys):
            return evicted  # the walk is over: the next pass starts a new one
        await asyncio.sleep(0)
    return evicted


def register(app: Any, pulse: Runtime) -> None:
    policy = policy_of(pulse)
    cursor = SweepCursor()
    if policy.enabled:

        @app.timer(interval=pulse.settings.retention_sweep_interval_s, name="retention")
        async def retention() -> None:
            try:
                await retention_pass(pulse, cursor, policy)
            except Exception:  # never stop the timer: retried at the next pass
                log.exception("retention sweep failed; retrying at the next pass")

    @app.timer(interval=pulse.settings.housekeeping_interval_s)
    async def housekeeping() -> None:
        started = time.monotonic()
        try:
            await refresh_lag(pulse)
        except Exception as exc:  # lag is best effort: a broker hiccup must not stop the timer
            log.warning("consumer lag not refreshed (%s: %s)", type(exc).__name__, exc)
        await refresh_state_gauges_stepwise(pulse)
        pulse.metrics.housekeeping_seconds.observe(time.monotonic() - started)
