"""The ingest agent: batches from ``crm.events`` through the engine, results to Kafka.

Order matters for "nothing is lost": dead letters and alerts are acknowledged by the
broker before the new record states are written to the changelog, and Faust commits the
input offsets only after that (it flushes the producer before each commit). A crash at any
point replays the batch; replayed events meet the remembered event ids and emit nothing
twice, and alert ids are deterministic, so consumers deduplicate any overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from streams.app import Pulse
from streams.decode import RawRecord
from streams.engine import BatchResult

log = logging.getLogger(__name__)


def dlq_headers(dead: Any) -> list[tuple[str, bytes]]:
    return [
        ("crm-pulse-error", dead.model_dump_json().encode()),
        ("crm-pulse-reason", dead.reason.encode()),
    ]


async def ship(pulse: Pulse, result: BatchResult, received: float) -> None:
    """Send what one batch produced, then write the record states."""
    futures = []
    for raw, dead in result.dead:
        futures.append(
            await pulse.dlq_topic.send(key=raw.key, value=raw.value, headers=dlq_headers(dead))
        )
    for alert in result.alerts:
        futures.append(
            await pulse.alerts_topic.send(
                key=alert.alert_id.encode(), value=alert.model_dump_json().encode()
            )
        )
    if futures:
        await asyncio.gather(*futures)
    done = time.monotonic()
    table = pulse.entity_table
    for key, (partition, blob) in result.writes.items():
        table.data[key] = blob
        table.send_changelog(partition, key, blob)
    record_metrics(pulse, result, done - received)


def record_metrics(pulse: Pulse, result: BatchResult, latency: float) -> None:
    m = pulse.metrics
    stats = result.stats
    for (entity, op, source), n in stats.events.items():
        m.events.labels(entity=entity, op=op, source=source).inc(n)
    for reason, n in stats.invalid.items():
        m.invalid_events.labels(reason=reason).inc(n)
    for rule, n in stats.rule_errors.items():
        m.rule_errors.labels(rule=rule).inc(n)
    if stats.duplicates:
        m.duplicate_events.inc(stats.duplicates)
    now = datetime.now(UTC)
    for alert in result.alerts:
        m.alerts.labels(rule=alert.rule_id, severity=alert.severity.value, status=alert.status.value).inc()
        m.processing_latency.observe(latency)
        if alert.occurred_at is not None:
            m.event_to_alert_latency.observe(max(0.0, (now - alert.occurred_at).total_seconds()))


def register(pulse: Pulse) -> None:
    settings = pulse.settings
    within = settings.batch_within_ms / 1000.0

    @pulse.app.agent(pulse.events_topic, name="ingest")  # type: ignore[misc]
    async def ingest(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_max, within=within):
            received = time.monotonic()
            records = [
                RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
                for m in (event.message for event in events)
            ]
            result = pulse.engine.process(records, pulse.state_get)
            on_changes = pulse.extras.get("on_changes")  # KPI facts, acked before state writes
            if on_changes is not None:
                await on_changes(result)
            await ship(pulse, result, received)
            pulse.metrics.batches.inc()
            pulse.metrics.batch_size.observe(len(records))
            for alert in result.alerts:
                log.info("alert %s %s %s: %s", alert.status.value, alert.rule_id,
                         alert.subject.id, alert.message)

    pulse.extras["ingest_agent"] = ingest
