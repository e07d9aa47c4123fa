"""The ingest agent: batches from ``crm.events`` through the engine, results to Kafka.

The agent never waits for the broker: it takes a batch (without acking it), runs the pure
engine, applies the new record states to the in-memory table (so the next batch sees them)
and hands the batch to the :class:`Shipper`. The shipper, one task, in batch order:

1. sends dead letters, alerts and what the change hooks derive from the batch (KPI facts,
   owner-frequency hits) and waits for the broker's acknowledgements of all of them;
2. only then writes the record states to the changelog, and waits for those acks too;
3. only then acks the batch's input events, so Faust may commit their offsets.

Batches that queued up while the shipper waited for the broker are shipped together (a
group commit: one round of sends and acks for all of them, then their acks in order), so
the time a batch waits for the broker does not grow with the number of batches.

So a crash at any point replays from the last committed offset: an alert is never lost
(it is acknowledged before the state that remembers its event), and a replayed event either
meets its remembered id (nothing emitted) or emits the same ``alert_id`` and ``sequence``
again, which consumers deduplicate. Batches are shipped in order, so the changelog never
goes back in time; the bounded queue gives backpressure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from streams.app import Pulse
from streams.decode import RawRecord
from streams.engine import BatchResult
from streams.outputs import alert_value, dead_letter_headers, dead_letter_record
from streams.produce import send_batched

log = logging.getLogger(__name__)


def dlq_headers(dead: Any) -> list[tuple[str, bytes]]:
    return dead_letter_headers(dead)


async def ship(pulse: Pulse, result: BatchResult, received: float) -> None:
    """Send what one batch produced, wait for the acks, then write the changelog.

    Records go straight to the app's Kafka producer (its accumulator batches them), not
    through Faust's per-message ``Topic.send``/``send_soon`` buffer, which costs about a
    millisecond per record.
    """
    send = pulse.app.producer.send
    settings = pulse.settings
    from streams.agents.alerting import after_write, gate_alerts, gate_ready
    from streams.agents.sources import link_alerts

    if result.alerts:
        await gate_ready(pulse)  # after a start: the budget is rebuilt from crm.alerts first
    result.alerts = gate_alerts(pulse, result.alerts)  # silences + budget: notify or not
    result.alerts = link_alerts(pulse, result.alerts)  # the record's page in its CRM
    futures: list[Any] = []
    if result.changes:  # KPI facts, owner-frequency hits: acked before the state writes
        for on_changes in pulse.extras.get("change_hooks", ()):
            futures.extend(await on_changes(result))
    limit = settings.max_message_bytes
    cut = pulse.metrics.oversized_outputs
    for raw, dead in result.dead:
        value, headers, was_cut = dead_letter_record(raw.key, raw.value, dead, limit)
        if was_cut:
            cut.labels(kind="dead_letter").inc()
        futures.append(await send(settings.dlq_topic, raw.key, value, None, None, headers))
    for alert in result.alerts:
        value, was_cut = alert_value(alert, limit)
        if was_cut:
            cut.labels(kind="alert").inc()
        futures.append(
            await send(settings.alerts_topic, alert.alert_id.encode(), value, None, None, None)
        )
    started = time.monotonic()
    if futures:
        await asyncio.gather(*futures)
    done = time.monotonic()
    m = pulse.metrics
    m.ship_seconds.observe(done - started)
    m.produced.labels(kind="alert").inc(len(result.alerts))
    m.produced.labels(kind="dead_letter").inc(len(result.dead))
    m.produced.labels(kind="changelog").inc(len(result.writes))
    # delivered before the input is acked (the caller acks after this returns): a crash
    # after the ack finds every state of the batch in the changelog
    written = await send_batched(
        pulse.app.producer._ensure_producer(),
        pulse.changelog_topic,
        ((partition, key, blob) for key, (partition, blob) in result.writes.items()),
    )
    if written:
        await asyncio.gather(*written)
    after_write(pulse, result)  # timer deadlines of the new states
    observe_latency(pulse, result, done - received)


def count_batch(pulse: Pulse, result: BatchResult) -> None:
    """Counters of one processed batch, recorded when it is handed to the shipper (so a
    reader who sees its output on Kafka also sees it counted)."""
    m = pulse.metrics
    stats = result.stats
    for (entity, op, source), n in stats.events.items():
        m.events.labels(entity=entity, op=op, source=source).inc(n)
    for reason, n in stats.invalid.items():
        m.invalid_events.labels(reason=reason).inc(n)
    for rule, n in stats.rule_errors.items():
        m.rule_errors.labels(rule=rule).inc(n)
    for stage, n in stats.processing_errors.items():
        m.processing_errors.labels(stage=stage).inc(n)
    if stats.duplicates:
        m.duplicate_events.inc(stats.duplicates)
    if stats.replays:
        m.replayed_events.inc(stats.replays)
    if stats.out_of_order:
        m.out_of_order_events.inc(stats.out_of_order)
    for alert in result.alerts:
        m.alerts.labels(
            rule=alert.rule_id, severity=alert.severity.value, status=alert.status.value
        ).inc()
    if pulse.settings.metrics_owner_label:  # opt-in: owner ids are unbounded in general
        for alert in result.alerts:
            if alert.owner_id:
                m.alerts_by_owner.labels(owner=alert.owner_id).inc()


def observe_latency(pulse: Pulse, result: BatchResult, latency: float) -> None:
    """Ingest -> alert acknowledged, and event time -> alert acknowledged."""
    m = pulse.metrics
    now = datetime.now(UTC)
    for alert in result.alerts:
        m.processing_latency.observe(latency)
        if alert.occurred_at is not None:
            m.event_to_alert_latency.observe(max(0.0, (now - alert.occurred_at).total_seconds()))


class Shipper:
    """Ships batch results in order, off the ingest path (see module docstring)."""

    def __init__(self, pulse: Pulse, max_pending: int = 8) -> None:
        self.pulse = pulse
        self.queue: asyncio.Queue[tuple[BatchResult, Callable[[], None], float]] = asyncio.Queue(
            max_pending
        )
        self._task: asyncio.Task[None] | None = None

    async def put(self, result: BatchResult, ack: Callable[[], None], received: float) -> None:
        """Queue one batch; ``ack`` acknowledges its input records once it is shipped."""
        count_batch(self.pulse, result)
        if self._task is None or self._task.done():
            if self._task is not None and self._task.done() and not self._task.cancelled():
                self._task.result()  # a crashed shipper crashes the ingest path: never silent
            self._task = asyncio.create_task(self._run(), name="crm-pulse-shipper")
        await self.queue.put((result, ack, received))

    async def _run(self) -> None:
        queue = self.queue
        while True:
            taken = [await queue.get()]
            while not queue.empty():  # group commit: what queued meanwhile goes out too
                taken.append(queue.get_nowait())
            try:
                result = merge_results([r for r, _, _ in taken])
                await ship(self.pulse, result, min(received for _, _, received in taken))
                for _, ack, _ in taken:
                    ack()
            except Exception as exc:
                # nothing of these batches is acked: the worker stops (a supervisor restarts
                # it) and the input is replayed from the last commit. Waiting for the next
                # batch to notice would stall the worker silently when none comes.
                log.exception("shipping failed; the worker stops, its unacked input is replayed")
                await self.pulse.app.crash(exc)
                raise
            finally:
                for _ in taken:
                    queue.task_done()


def merge_results(results: Sequence[BatchResult]) -> BatchResult:
    """Consecutive batch results as one, in order: outputs concatenated, each record's
    last state kept (a later batch saw the earlier one's states, so its write supersedes).
    Only the statistics the shipper still records (rule skips) are summed; the others
    were counted when each batch was queued."""
    if len(results) == 1:
        return results[0]
    merged = BatchResult()
    for result in results:
        merged.alerts.extend(result.alerts)
        merged.dead.extend(result.dead)
        merged.changes.extend(result.changes)
        for key, write in result.writes.items():
            merged.writes.pop(key, None)  # re-inserted: the changelog order follows batches
            merged.writes[key] = write
        merged.due.update(result.due)
        merged.stats.skips.update(result.stats.skips)
    return merged


def apply_writes(pulse: Pulse, result: BatchResult) -> None:
    """Apply new record states to the in-memory table (the changelog follows, shipped)."""
    table_data = pulse.entity_table.data
    for key, (_, blob) in result.writes.items():
        if blob is None:  # the record leaves the hot state (retention)
            table_data.pop(key, None)
        else:
            table_data[key] = blob


async def submit(pulse: Pulse, result: BatchResult, ack: Callable[[], None] | None = None) -> None:
    """Hand a result computed from the current states to the ordered shipper.

    Every writer of the entity table (ingest, timers, KPI rules) computes its result and
    applies it to the in-memory table without awaiting in between, then submits here: the
    shipper keeps one order for alerts, changelog writes and acks.
    """
    apply_writes(pulse, result)
    shipper: Shipper = pulse.extras["shipper"]
    await shipper.put(result, ack or _nothing, time.monotonic())


def _nothing() -> None:
    return None


def process_batch(pulse: Pulse, messages: Sequence[Any]) -> BatchResult:
    """Run the engine on Faust messages and apply the new states to the in-memory table."""
    records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value, timestamp_ms(m))
               for m in messages]  # fmt: skip
    result = pulse.engine.process(records, pulse.state_get)
    apply_writes(pulse, result)
    pulse.metrics.batches.inc()
    pulse.metrics.batch_size.observe(len(records))
    if log.isEnabledFor(logging.DEBUG):  # alerts are on their topic; this is for debugging
        for alert in result.alerts:
            log.debug(
                "alert %s %s %s: %s",
                alert.status.value, alert.rule_id, alert.subject.id, alert.message,
            )  # fmt: skip
    return result


def timestamp_ms(message: Any) -> int | None:
    """The Kafka timestamp of a consumed record in ms (Faust keeps it in seconds)."""
    ts = getattr(message, "timestamp", None)
    return round(ts * 1000) if ts else None


def register(pulse: Pulse) -> None:
    settings = pulse.settings
    within = settings.batch_within_ms / 1000.0
    shipper = Shipper(pulse)
    pulse.extras["shipper"] = shipper
    app = pulse.app

    async def on_records(messages: list[Any]) -> None:
        received = time.monotonic()
        rules_ready = pulse.extras.get("rules_ready")
        if rules_ready is not None and not rules_ready.is_set():
            await rules_ready.wait()  # never evaluate events before the live rules are read
        for start in range(0, len(messages), settings.batch_max):
            chunk = messages[start : start + settings.batch_max]
            result = process_batch(pulse, chunk)
            await shipper.put(result, partial(app.consumer.ack_many, chunk), received)

    if settings.batch_consumer:
        app.batch_handlers[pulse.events_topic.get_topic_name()] = on_records

    # The agent subscribes the input topic (with acks) in Faust's conductor. With the batch
    # consumer on, records reach ``on_records`` and this stream stays idle; with it off,
    # this is the classic per-record Faust path, batched by ``noack_take``.
    @app.agent(pulse.events_topic, name="ingest")
    async def ingest(stream: Any) -> None:
        rules_ready = pulse.extras.get("rules_ready")
        if rules_ready is not None:  # never evaluate events before the live rules are read
            await rules_ready.wait()
        async for events in stream.noack_take(settings.batch_max, within=within):
            received = time.monotonic()
            result = process_batch(pulse, [event.message for event in events])
            await shipper.put(result, partial(ack_events, events), received)

    pulse.extras["ingest_agent"] = ingest


def ack_events(events: Sequence[Any]) -> None:
    for event in events:
        event.ack()
