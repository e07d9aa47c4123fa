"""Alerting wiring: timers, KPI rules, silences and the alert board on the Faust app.

* ``runtime(pulse)``: the per-worker alerting pieces (timer index, gate, board).
* the ``kpi-rules`` agent: ``crm.kpis`` snapshots -> KPI rules -> alerts.
* the ``alert-timers`` timer (every ``alert_tick_s``): due records and KPI series are
  judged again (:func:`streams.alerting.timed.fire_due`), reminders and digests go out.
* the ``alert-feeds`` task: reads ``crm.silences`` and ``crm.alerts`` (every partition,
  no consumer group) into the silence book, the alert board and the notification budget
  (rebuilt from the topic after a start before the first alert is gated; digests are sent
  by the worker owning the owner's partition of the owner-keyed topic).

Every writer of the entity table (ingest, KPI rules, timers) reads, judges and applies its
new states without awaiting in between, then hands the result to the ingest shipper
(:func:`streams.agents.ingest.submit`), which keeps one order for alerts, changelog writes
and input acks: a timer never overwrites a newer state, the changelog never goes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from streams.alerting.board import AlertBoard
from streams.alerting.budget import NotificationBudget
from streams.alerting.gate import Gate
from streams.alerting.owner_frequency import owner_partition
from streams.alerting.retired import retired_ids, retired_rules
from streams.alerting.silences import SilenceBook
from streams.alerting.timed import fire_due, process_kpis
from streams.app import RAW, RAW_SER, Pulse
from streams.clock import utcnow
from streams.contracts.alerts import AlertEvent, AlertStatus
from streams.decode import RawRecord
from streams.engine import BatchResult
from streams.org import OrgDirectory
from streams.rules.ruleset import RuleSet
from streams.state import decode_state
from streams.timers import TimerIndex

log = logging.getLogger(__name__)


#: Seconds after a budget window ends before its digests go out (the other workers' alerts
#: of that window are read back from crm.alerts meanwhile).
DIGEST_GRACE_S = 5.0
#: Longest wait of the gate for crm.alerts to be read up to its end after a start.
GATE_WAIT_S = 30.0


@dataclass
class AlertingRuntime:
    org: OrgDirectory
    silences: SilenceBook
    budget: NotificationBudget
    gate: Gate
    board: AlertBoard
    index: TimerIndex = field(default_factory=TimerIndex)
    generation: tuple[int, int] | None = None
    silences_topic: Any = None
    #: Set once crm.alerts has been read up to its end as of the start (budget rebuilt).
    alerts_read: asyncio.Event = field(default_factory=asyncio.Event)
    gate_wait_over: bool = False


def runtime(pulse: Pulse) -> AlertingRuntime:
    rt: AlertingRuntime = pulse.extras["alerting"]
    return rt


def gate_alerts(pulse: Pulse, alerts: Sequence[AlertEvent]) -> list[AlertEvent]:
    """Mark silenced / over-budget alerts (still published, not notified); counts them."""
    rt = pulse.extras.get("alerting")
    if rt is None or not alerts:
        return list(alerts)
    gate: Gate = rt.gate
    gated, counts = gate.apply(alerts, pulse.engine.clock())
    for (rule, reason), n in counts.items():
        pulse.metrics.alerts_muted.labels(rule=rule, reason=reason).inc(n)
    return gated


async def gate_ready(pulse: Pulse) -> None:
    """Before the first alert is gated after a start, wait until the budget has been rebuilt
    from crm.alerts (at most ``GATE_WAIT_S``; then gate with what has been read, and say so)."""
    rt = pulse.extras.get("alerting")
    if rt is None or rt.gate_wait_over or rt.budget.per_hour <= 0 or rt.alerts_read.is_set():
        return
    try:
        await asyncio.wait_for(rt.alerts_read.wait(), timeout=GATE_WAIT_S)
    except TimeoutError:
        rt.gate_wait_over = True
        log.warning("crm.alerts not read to its end after %.0f s: the notification budget "
                    "goes on with the alerts read so far", GATE_WAIT_S)  # fmt: skip


def note_feed_trust(pulse: Pulse, alerts: Sequence[AlertEvent]) -> None:
    """A silent feed (``feed_silence`` FIRING) lowers its KPI's trust gauge at once; the
    next snapshot of that KPI sets it back (:mod:`streams.agents.kpis`)."""
    for alert in alerts:
        trust = alert.evidence.get("kpi_trust")
        if alert.status != AlertStatus.FIRING or not isinstance(trust, int | float):
            continue
        kind, _, scope_id = str(alert.evidence.get("scope", "")).partition(":")
        pulse.metrics.kpi_trust.labels(
            kpi=str(alert.evidence.get("kpi")), scope_kind=kind, scope_id=scope_id,
            window=str(alert.evidence.get("window")),
        ).set(float(trust))  # fmt: skip


def after_write(pulse: Pulse, result: BatchResult) -> None:
    """Schedule the deadlines of the states just written; count rule skips."""
    rt = pulse.extras.get("alerting")
    for (rule, reason), n in result.stats.skips.items():
        pulse.metrics.rule_skips.labels(rule=rule, reason=reason).inc(n)
    if rt is None:
        return
    for key, due in result.due.items():
        rt.index.schedule(key, due)
    pulse.metrics.timers_pending.set(len(rt.index))


def _assigned(pulse: Pulse) -> set[int] | None:
    app = pulse.app
    # Faust ends a rebalance only once the tables are recovered (``on_rebalance_end``)
    if app.consumer is None or app.rebalancing or getattr(app, "in_recovery", False):
        return None
    if not app.tables.recovery.completed.is_set():
        return None
    return {tp.partition for tp in app.consumer.assignment()
            if tp.topic == pulse.settings.events_topic}  # fmt: skip


def _owner_partitions(pulse: Pulse) -> set[int] | None:
    """Partitions of the owner-keyed topic this worker owns: the owners whose digests it
    sends (every owner belongs to one partition, so to one worker)."""
    consumer = pulse.app.consumer
    if consumer is None:
        return None
    topic = pulse.settings.frequency_topic
    return {tp.partition for tp in consumer.assignment() if tp.topic == topic}


def rebuild_index(pulse: Pulse, partitions: set[int]) -> int:
    """Rebuild the timer heap from the table (after recovery, a rebalance, or a rule set that
    lost or retyped a rule)."""
    rt = runtime(pulse)
    rt.index.clear()
    from streams.engine import next_due

    rules = pulse.engine.rules
    for key, blob in list(pulse.entity_table.data.items()):
        try:
            state = decode_state(blob if isinstance(blob, bytes) else bytes(blob))
            if state is None or not isinstance(state.get("p"), int):
                continue
            if state["p"] not in partitions:
                continue
            # episodes of deleted or retyped rules: resolved at the next scan
            due = 0.0 if retired_rules(state, rules) else next_due(state)
        except Exception as exc:  # one unreadable state never stops the timers
            pulse.metrics.processing_errors.labels(stage="timer_index").inc()
            log.warning("state %r unreadable (%s); not scheduled", key, type(exc).__name__)
            continue
        rt.index.schedule(bytes(key), due)
    pulse.metrics.timers_pending.set(len(rt.index))
    return len(rt.index)


def on_rules_swapped(pulse: Pulse, before: RuleSet, after: RuleSet) -> None:
    """A rule deleted or retyped: rebuild the timer index at the next tick, which schedules
    the states holding its open episodes (one table pass per such rule change, none per
    event)."""
    gone = retired_ids(before, after)
    rt = pulse.extras.get("alerting")
    if gone and rt is not None:
        rt.generation = None
        log.info("rule(s) %s deleted or retyped: their open episodes resolve at the next "
                 "timer scan", sorted(gone))  # fmt: skip


async def timer_tick(pulse: Pulse) -> int:
    """One scan: judge what is due on the partitions this worker owns; returns alerts sent."""
    from streams.agents.ingest import submit

    rt = runtime(pulse)
    partitions = _assigned(pulse)
    if partitions is None:
        return 0
    generation = (pulse.app.rebalancing_count, pulse.app.consumer_generation_id)
    if generation != rt.generation:
        n = rebuild_index(pulse, partitions)
        rt.generation = generation
        log.info("timer index rebuilt: %d scheduled on partitions %s", n, sorted(partitions))
    now = pulse.engine.clock()
    # read, judge and apply without awaiting in between; the shipper keeps the order
    keys = rt.index.pop_due(now.timestamp(), pulse.settings.timer_batch)
    result = fire_due(
        pulse.engine.rules, keys, pulse.state_get, now, rt.org, partitions,
        pulse.engine.state_max_bytes,
    )  # fmt: skip
    owners = _owner_partitions(pulse)
    if owners is not None and rt.alerts_read.is_set():
        parts = pulse.settings.topic_partitions
        result.alerts.extend(
            rt.budget.digests(now, lambda owner: owner_partition(owner, parts) in owners)
        )
    if not keys and not result.alerts:
        return 0
    note_feed_trust(pulse, result.alerts)
    await submit(pulse, result)
    pulse.metrics.timer_scans.inc()
    return len(result.alerts)


async def feed_loop(pulse: Pulse) -> None:
    """Silences and alerts (all partitions) into the silence book and the board."""
    from streams.runtime.clients import behind, new_consumer

    rt = runtime(pulse)
    s = pulse.settings
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
                        read_alert(rt, record.value, record.timestamp, pulse.engine.clock())
            pulse.metrics.silences_active.set(len(rt.silences.active(utcnow())))
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


def register(pulse: Pulse) -> None:
    settings = pulse.settings
    app = pulse.app
    org = OrgDirectory.load(settings.org_directory_file)
    pulse.engine.org = org
    silences = SilenceBook()
    budget = NotificationBudget(
        settings.notify_budget_per_hour, settings.notify_budget_window_s, DIGEST_GRACE_S
    )
    rt = AlertingRuntime(
        org=org, silences=silences, budget=budget, gate=Gate(silences, budget, org),
        board=AlertBoard(settings.alert_board_keep, settings.alert_board_keep_open),
    )  # fmt: skip
    rt.silences_topic = app.topic(settings.silences_topic, partitions=1, **RAW, **RAW_SER)
    pulse.extras["alerting"] = rt
    pulse.extras.setdefault("rule_hooks", []).append(partial(on_rules_swapped, pulse))
    kpis_topic = app.topic(
        settings.kpis_topic, partitions=settings.topic_partitions, **RAW, **RAW_SER
    )
    within = settings.batch_within_ms / 1000.0

    async def judge_snapshots(messages: Sequence[Any], ack: Any) -> None:
        from streams.agents.ingest import submit

        records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]
        result = process_kpis(pulse.engine.rules, records, pulse.state_get, pulse.engine.clock())
        await submit(pulse, result, ack)
        pulse.metrics.kpi_snapshots_read.labels(result="read").inc(len(records))
        for reason, n in result.stats.invalid.items():
            pulse.metrics.kpi_snapshots_read.labels(result=reason).inc(n)

    async def on_snapshots(messages: list[Any]) -> None:
        for start in range(0, len(messages), settings.batch_max):
            chunk = messages[start : start + settings.batch_max]
            await judge_snapshots(chunk, partial(app.consumer.ack_many, chunk))

    if settings.batch_consumer:  # one list per fetch, as for the input (streams.transport)
        app.batch_handlers[kpis_topic.get_topic_name()] = on_snapshots

    # Subscribes crm.kpis (acks on): idle with the batch consumer on (see ``on_snapshots``).
    @app.agent(kpis_topic, name="kpi-rules")
    async def kpi_rules(stream: Any) -> None:
        from streams.agents.ingest import ack_events

        async for events in stream.noack_take(settings.batch_max, within=within):
            await judge_snapshots([event.message for event in events], partial(ack_events, events))

    @app.timer(settings.alert_tick_s, name="alert-timers")
    async def alert_timers() -> None:
        try:
            await timer_tick(pulse)
        except Exception:  # never kill the timer: log and retry at the next tick
            log.exception("timer scan failed; retrying at the next tick")

    @app.task
    async def alert_feeds() -> None:
        while True:
            try:
                await feed_loop(pulse)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert feeds failed; restarting in 2 s")
                await asyncio.sleep(2.0)

    pulse.extras["kpi_rules_agent"] = kpi_rules
