"""The owner-frequency agent: ``frequency`` rules with ``per: owner`` across partitions.

The ingest shipper hands each batch's changes to :func:`forward` (hook
``pulse.extras["change_hooks"]``), which sends the matching ones to the internal
``<prefix>.frequency`` topic keyed by owner and awaits the acks before the record states are
written. The ``frequency`` agent counts them per (rule, owner) in the ``frequency-counts``
table (changelogged, co-partitioned with the topic) and ships like the ingest path: alerts
acknowledged first, then the changelog, then the input acked. The logic is in
:mod:`streams.alerting.owner_frequency`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.alerting.owner_frequency import count_hits, owner_hits, owner_partition
from streams.app import RAW, RAW_SER, Pulse
from streams.decode import RawRecord
from streams.engine import BatchResult

log = logging.getLogger(__name__)


async def ship_counts(pulse: Pulse, table: Any, result: BatchResult) -> None:
    """Alerts (gated) acknowledged, then the count states to the changelog."""
    from streams.agents.alerting import gate_alerts, gate_ready
    from streams.agents.ingest import count_batch

    send = pulse.app.producer.send
    if result.alerts:
        await gate_ready(pulse)
    result.alerts = gate_alerts(pulse, result.alerts)
    count_batch(pulse, result)
    futures = []
    for alert in result.alerts:
        value = alert.model_dump_json().encode()
        futures.append(await send(pulse.settings.alerts_topic, alert.alert_id.encode(), value,
                                  None, None, None))  # fmt: skip
        log.info("alert %s %s %s: %s", alert.status.value, alert.rule_id, alert.subject.id,
                 alert.message)  # fmt: skip
    if futures:
        await asyncio.gather(*futures)
    pulse.metrics.produced.labels(kind="alert").inc(len(result.alerts))
    changelog = table.changelog_topic.get_topic_name()
    # acknowledged before the input is acked (the caller acks after this returns), as on the
    # ingest path: a commit never covers a hit whose count state is not on the changelog
    written = [
        await send(changelog, key, blob, partition, None, None)
        for key, (partition, blob) in result.writes.items()
    ]
    if written:
        await asyncio.gather(*written)


def register(pulse: Pulse) -> None:
    settings = pulse.settings
    app = pulse.app
    parts = settings.topic_partitions
    topic = app.topic(settings.frequency_topic, partitions=parts, internal=True, **RAW, **RAW_SER)
    table = app.Table(
        "frequency-counts", partitions=parts, help="Frequency counts per rule and owner.", **RAW
    )
    pulse.extras["frequency_topic"] = topic

    async def forward(result: BatchResult) -> list[Any]:
        """Send the owner hits of a batch; returns the delivery futures (the shipper awaits
        them with the alerts', before the record states are written)."""
        found = owner_hits(pulse.engine.rules, result.changes)
        for (rule, reason), n in found.skips.items():
            pulse.metrics.rule_skips.labels(rule=rule, reason=reason).inc(n)
        for rule, n in found.errors.items():
            pulse.metrics.rule_errors.labels(rule=rule).inc(n)
        return [
            await topic.send(key=owner.encode(), value=value,
                             partition=owner_partition(owner, parts))
            for owner, value in found.messages
        ]  # fmt: skip

    pulse.extras.setdefault("change_hooks", []).append(forward)
    within = settings.batch_within_ms / 1000.0

    def lookup(key: bytes) -> bytes | None:
        value = table.data.get(key)
        return value if value is None or isinstance(value, bytes) else bytes(value)

    @app.agent(topic, name="frequency")
    async def frequency(stream: Any) -> None:
        from streams.agents.ingest import ack_events

        rules_ready = pulse.extras.get("rules_ready")
        if rules_ready is not None:  # count with the live rules, never the files' ones
            await rules_ready.wait()
        async for events in stream.noack_take(settings.batch_max, within=within):
            records = [
                RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
                for m in (event.message for event in events)
            ]
            result = count_hits(pulse.engine.rules, records, lookup, pulse.engine.clock())
            for key, (_, blob) in result.writes.items():
                table.data[key] = blob
            if result.stats.invalid:
                log.warning("owner-frequency hits dropped: %s", dict(result.stats.invalid))
            await ship_counts(pulse, table, result)
            ack_events(events)

    pulse.extras["frequency_agent"] = frequency
