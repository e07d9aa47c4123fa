"""Alerting wiring: timers, KPI rules, silences and the alert board on the Faust app.

The per-worker alerting state (timer index, silences, budget, gate, board) is
``Runtime.alerting`` (:class:`streams.runtime.alerting.AlertingRuntime`), built with the
container before any agent registers.

* the ``kpi-rules`` agent: ``crm.kpis`` snapshots -> KPI rules -> alerts.
* the ``alert-timers`` timer (every ``alert_tick_s``): due records and KPI series are
  judged again (:func:`streams.judge.batch.judge_due`), reminders and digests go out.
* the ``alert-feeds`` task: reads ``crm.silences`` and ``crm.alerts`` (every partition,
  no consumer group) into the silence book, the alert board and the notification budget
  (rebuilt from the topic after a start before the first alert is gated; digests are sent
  by the worker owning the owner's partition of the owner-keyed topic).

Every writer of the entity table (ingest, KPI rules, timers) reads, judges and applies its
new states without awaiting in between, then hands the result to the one shipper
(:meth:`streams.runtime.shipper.Shipper.submit`), which keeps one order for alerts,
changelog writes and input acks: a timer never overwrites a newer state, the changelog
never goes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from streams.clock import utcnow
from streams.contracts.alerts import AlertEvent, AlertStatus
from streams.decode import RawRecord
from streams.judge.batch import judge_due, judge_points
from streams.judge.owner import owner_partition
from streams.judge.retire import retired_ids, retired_rules
from streams.judge.state import decode_dict, state_of
from streams.rules.ruleset import RuleSet
from streams.runtime.alerting import AlertingRuntime
from streams.runtime.container import Runtime
from streams.transport import ack_events

log = logging.getLogger(__name__)


def note_feed_trust(runtime: Runtime, alerts: Sequence[AlertEvent]) -> None:
    """A silent feed (``feed_silence`` FIRING) lowers its KPI's trust gauge at once; the
    next snapshot of that KPI sets it back (:mod:`streams.agents.kpis`)."""
    for alert in alerts:
        trust = alert.evidence.get("kpi_trust")
        if alert.status != AlertStatus.FIRING or not isinstance(trust, int | float):
            continue
        kind, _, scope_id = str(alert.evidence.get("scope", "")).partition(":")
        runtime.metrics.kpi_trust.labels(
            kpi=str(alert.evidence.get("kpi")), scope_kind=kind, scope_id=scope_id,
            window=str(alert.evidence.get("window")),
        ).set(float(trust))  # fmt: skip


def _assigned(runtime: Runtime) -> set[int] | None:
    app = runtime.app
    # Faust ends a rebalance only once the tables are recovered (``on_rebalance_end``)
    if app.consumer is None or app.rebalancing or getattr(app, "in_recovery", False):
        return None
    if not app.tables.recovery.completed.is_set():
        return None
    return {tp.partition for tp in app.consumer.assignment()
            if tp.topic == runtime.settings.events_topic}  # fmt: skip


def _owner_partitions(runtime: Runtime) -> set[int] | None:
    """Partitions of the owner-keyed topic this worker owns: the owners whose digests it
    sends (every owner belongs to one partition, so to one worker)."""
    consumer = runtime.app.consumer
    if consumer is None:
        return None
    topic = runtime.settings.frequency_topic
    return {tp.partition for tp in consumer.assignment() if tp.topic == topic}


def rebuild_index(runtime: Runtime, partitions: set[int]) -> int:
    """Rebuild the timer heap from the table (after recovery, a rebalance, or a rule set that
    lost or retyped a rule)."""
    rt = runtime.alerting
    rt.index.clear()
    rules = runtime.engine.rules
    for key, blob in list(runtime.entity_table.data.items()):
        try:
            state = decode_dict(blob if isinstance(blob, bytes) else bytes(blob))
            if state is None or not isinstance(state.get("p"), int):
                continue
            if state["p"] not in partitions:
                continue
            # episodes of deleted or retyped rules: resolved at the next scan
            due = 0.0 if retired_rules(state, rules) else state_of(state).next_due()
        except Exception as exc:  # one unreadable state never stops the timers
            runtime.metrics.processing_errors.labels(stage="timer_index").inc()
            log.warning("state %r unreadable (%s); not scheduled", key, type(exc).__name__)
            continue
        rt.index.schedule(bytes(key), due)
    runtime.metrics.timers_pending.set(len(rt.index))
    return len(rt.index)


def on_rules_swapped(runtime: Runtime, before: RuleSet, after: RuleSet) -> None:
    """A rule deleted or retyped: rebuild the timer index at the next tick, which schedules
    the states holding its open episodes (one table pass per such rule change, none per
    event)."""
    gone = retired_ids(before, after)
    if gone:
        runtime.alerting.generation = None
        log.info("rule(s) %s deleted or retyped: their open episodes resolve at the next "
                 "timer scan", sorted(gone))  # fmt: skip


async def timer_tick(runtime: Runtime) -> int:
    """One scan: judge what is due on the partitions this worker owns; returns alerts sent."""
    rt = runtime.alerting
    partitions = _assigned(runtime)
    if partitions is None:
        return 0
    generation = (runtime.app.rebalancing_count, runtime.app.consumer_generation_id)
    if generation != rt.generation:
        n = rebuild_index(runtime, partitions)
        rt.generation = generation
        log.info("timer index rebuilt: %d scheduled on partitions %s", n, sorted(partitions))
    now = runtime.engine.clock()
    # read, judge and apply without awaiting in between; the shipper keeps the order
    keys = rt.index.pop_due(now.timestamp(), runtime.settings.timer_batch)
    result = judge_due(
        runtime.engine.judge(), keys, runtime.state_get, now, partitions,
        runtime.engine.state_max_bytes,
    )  # fmt: skip
    owners = _owner_partitions(runtime)
    if owners is not None and rt.alerts_read.is_set():
        parts = runtime.settings.topic_partitions
        result.alerts.extend(
            rt.budget.digests(now, lambda owner: owner_partition(owner, parts) in owners)
        )
    if not keys and not result.alerts:
        return 0
    note_feed_trust(runtime, result.alerts)
    await runtime.shipper.submit(result)
    runtime.metrics.timer_scans.inc()
    return len(result.alerts)


async def feed_loop(runtime: Runtime) -> None:
    """Silences and alerts (all partitions) into the silence book and the board."""
    from streams.runtime.clients import behind, new_consumer

    rt = runtime.alerting
    s = runtime.settings
    consumer = new_consumer(
        s, "alert-feed", s.silences_topic, s.alerts_topic,
        auto_offset_reset="earliest", group_id=None, enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    ends: dict[Any, int] | None = None  # where crm.alerts ended when this read began
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == s.silences_topic:
                        error = rt.silences.apply_record(record.key, record.value)
                        if error:
                            log.warning("silence %r refused: %s", record.key, error)
                    else:
                        read_alert(rt, record.value, record.timestamp, runtime.engine.clock())
            runtime.metrics.silences_active.set(len(rt.silences.active(utcnow())))
            if rt.alerts_read.is_set():
                continue
            if ends is None:  # every partition is assigned at once (no consumer group)
                tps = [tp for tp in consumer.assignment() if tp.topic == s.alerts_topic]
                ends = await consumer.end_offsets(tps) if tps else None
            if ends is not None and not await behind(consumer, ends):
                rt.alerts_read.set()
                log.info("alerts read to their end: notification budget rebuilt")
    finally:
        await consumer.stop()


def read_alert(rt: AlertingRuntime, value: bytes | None, timestamp_ms: int, now: datetime) -> None:
    """One crm.alerts record into the board and the budget (at its Kafka timestamp)."""
    if not value:
        return
    try:
        alert = orjson.loads(value)
    except orjson.JSONDecodeError:
        return
    if not isinstance(alert, dict):
        return
    rt.board.apply(alert)
    rt.budget.observe(alert, datetime.fromtimestamp(timestamp_ms / 1000.0, tz=UTC), now)


def register(app: Any, runtime: Runtime) -> None:
    settings = runtime.settings
    runtime.rule_hooks.append(partial(on_rules_swapped, runtime))
    within = settings.batch_within_ms / 1000.0

    async def judge_snapshots(messages: Sequence[Any], ack: Any) -> None:
        records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]
        result = judge_points(
            runtime.engine.judge(), records, runtime.state_get, runtime.engine.clock()
        )
        await runtime.shipper.submit(result, ack)
        runtime.metrics.kpi_snapshots_read.labels(result="read").inc(len(records))
        for reason, n in result.stats.invalid.items():
            runtime.metrics.kpi_snapshots_read.labels(result=reason).inc(n)

    async def on_snapshots(messages: list[Any]) -> None:
        for start in range(0, len(messages), settings.batch_max):
            chunk = messages[start : start + settings.batch_max]
            await judge_snapshots(chunk, partial(app.consumer.ack_many, chunk))

    if settings.batch_consumer:  # one list per fetch, as for the input (streams.transport)
        app.batch_handlers[runtime.topics.kpis.get_topic_name()] = on_snapshots

    # Subscribes crm.kpis (acks on): idle with the batch consumer on (see ``on_snapshots``).
    @app.agent(runtime.topics.kpis, name="kpi-rules")
    async def kpi_rules(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_max, within=within):
            await judge_snapshots([event.message for event in events], partial(ack_events, events))

    @app.timer(settings.alert_tick_s, name="alert-timers")
    async def alert_timers() -> None:
        try:
            await timer_tick(runtime)
        except Exception:  # never kill the timer: log and retry at the next tick
            log.exception("timer scan failed; retrying at the next tick")

    @app.task
    async def alert_feeds() -> None:
        while True:
            try:
                await feed_loop(runtime)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert feeds failed; restarting in 2 s")
                await asyncio.sleep(2.0)

    runtime.watch("kpi_rules", kpi_rules)
