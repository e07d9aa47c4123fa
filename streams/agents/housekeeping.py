"""The housekeeping timer: gauges that are computed, not counted.

Every ``housekeeping_interval_s`` it refreshes consumer lag per input partition (the
broker's highwater minus this worker's committed offset), open alert episodes per rule,
and the number of tracked records.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping

from streams.app import Pulse
from streams.state import decode_state

log = logging.getLogger(__name__)


def lag_by_partition(
    highwaters: Mapping[int, int], committed: Mapping[int, int | None]
) -> dict[int, int]:
    """Records behind per partition: highwater (next offset to be written) minus the next
    offset this consumer will read (committed); nothing committed yet counts from 0."""
    return {
        partition: max(0, end - (committed.get(partition) or 0))
        for partition, end in highwaters.items()
    }


async def refresh_lag(pulse: Pulse) -> None:
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


def refresh_state_gauges(pulse: Pulse) -> None:
    """Tracked records and open episodes per rule, from one pass over the entity states.
    Synchronous, so a scrape never sees the gauges half refreshed. (The KPI gauges are set
    by the KPI agent when it publishes snapshots: :mod:`streams.agents.kpis`.)"""
    m = pulse.metrics
    data = pulse.entity_table.data
    m.tracked_records.set(len(data))
    open_by_rule: Counter[str] = Counter()
    for blob in list(data.values()):
        raw = bytes(blob)
        if OPEN_EPISODES not in raw:  # most records have none: no decoding (a byte search)
            continue
        state = decode_state(raw)
        if state is not None:
            open_by_rule.update(state.get("a", {}).keys())
    m.active_alerts.clear()  # rules dropped from the live set disappear
    for compiled in pulse.engine.rules.rules:
        m.active_alerts.labels(rule=compiled.id).set(open_by_rule.get(compiled.id, 0))


def register(pulse: Pulse) -> None:

    @pulse.app.timer(interval=pulse.settings.housekeeping_interval_s)
    async def housekeeping() -> None:
        started = time.monotonic()
        try:
            await refresh_lag(pulse)
        except Exception as exc:  # lag is best effort: a broker hiccup must not stop the timer
            log.warning("consumer lag not refreshed (%s: %s)", type(exc).__name__, exc)
        refresh_state_gauges(pulse)
        pulse.metrics.housekeeping_seconds.observe(time.monotonic() - started)

    pulse.extras["housekeeping_timer"] = housekeeping
