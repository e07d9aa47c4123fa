"""The KPI agent: facts from the ingest batches, per-scope day buckets, snapshots out.

The shipper hands each queued result's accepted changes to :class:`FactsHook` (a change
hook of the container), which groups their facts by scope and, in the shipper's write
stage, sends one message per partition of the internal ``<prefix>.kpi-facts`` topic (the
facts of every scope the producer's partitioner puts there); the shipper awaits the acks
before it writes the entity states. The ``kpis`` agent applies them to the
``kpi-buckets`` table (co-partitioned with the facts topic) and hands the changed buckets
to the same shipper, which writes them to the table's changelog in order with every other
writer's, then acks the facts. A timer publishes the changed snapshots to ``crm.kpis``
(compacted), sets the Prometheus gauges and serves ``GET /kpis``.

Every step is total over what it reads: a change, a facts message, a fact or a scope that
breaks one of them is skipped and counted in ``crm_pulse_kpi_skipped{stage, reason}``
(logged at most once per ``SKIP_LOG_INTERVAL_S``), never the agent, the shipment or the
publication round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from streams.agents.kpi_facts import (
    FACTS_STAGE,
    FactsHook,
    apply_message,
    facts_check,
    read_facts,
)
from streams.agents.kpi_publish import PublicationFailed, publish_now
from streams.gc_policy import collector_paused
from streams.judge.result import BatchResult
from streams.kpis.catalog import load_catalog
from streams.kpis.compute import Context
from streams.kpis.facts import FactRules
from streams.kpis.runtime import FILTERS, KpiRuntime
from streams.kpis.skips import ThrottledLog
from streams.kpis.store import KpiStore
from streams.runtime.container import RAW, RAW_SER, Runtime
from streams.runtime.shipment import Writes
from streams.transport import ack_events, in_chunks

log = logging.getLogger(__name__)

#: At most one log line of skipped KPI inputs per this many seconds.
SKIP_LOG_INTERVAL_S = 10.0


def count_skips(pulse: Runtime, runtime: KpiRuntime, skip_log: ThrottledLog) -> None:
    """Move what the KPI stages skipped to the counter and the throttled log."""
    for stage, reason, n, detail in runtime.skips.drain():
        pulse.metrics.kpi_skipped.labels(stage=stage, reason=reason).inc(n)
        skip_log.add(stage, reason, n, detail)
    skip_log.flush()


def count_late(pulse: Runtime, scope: str, late: int, duplicates: int) -> None:
    """Late and duplicate facts of one facts message, counted per scope kind."""
    kind = scope.partition(":")[0]
    if late:
        pulse.metrics.kpi_late_events.labels(scope_kind=kind).inc(late)
        log.warning(
            "%d event(s) for %s arrived after the allowed lateness (%d days): "
            "counted as late, not applied",
            late,
            scope,
            pulse.settings.kpi_allowed_lateness_days,
        )
    if duplicates:
        pulse.metrics.kpi_duplicate_events.labels(scope_kind=kind).inc(duplicates)


def register(app: Any, pulse: Runtime) -> None:
    settings = pulse.settings
    catalog = load_catalog(settings.kpi_catalog)
    # only the facts the loaded catalog reads are extracted, shipped and applied
    rules = FactRules.of_catalog(catalog, settings.closed_stages, settings.stage_order)
    directory = pulse.org  # the one org directory, re-read when its file changes
    parts = settings.topic_partitions
    facts_topic = app.topic(
        settings.kpi_facts_topic, partitions=parts, internal=True, **RAW, **RAW_SER
    )
    kpis_topic = pulse.topics.kpis
    table = app.Table("kpi-buckets", partitions=parts, help="KPI facts per scope and day.", **RAW)
    runtime = KpiRuntime(
        store=KpiStore(table.data),
        catalog=catalog,
        context=Context(stage_order=settings.stage_order),
        allowed_lateness_days=settings.kpi_allowed_lateness_days,
        trust_floor=settings.kpi_trust_floor,
        recent_days=settings.kpi_publish_recent_days,
        recent_months=settings.kpi_publish_recent_months,
        max_future_skew_s=settings.max_event_time_skew_s,
    )
    pulse.kpis = runtime
    skip_log = ThrottledLog(log, SKIP_LOG_INTERVAL_S)

    pulse.change_hooks.append(
        FactsHook(rules, directory.get, runtime, app.producer, facts_topic.get_topic_name())
    )
    # the same facts, built for each accepted change inside the engine's per-record
    # isolation: a change whose facts cannot be built or are too large is dead-lettered
    # (processing_error, stage kpi_facts) instead of failing the whole shipment
    pulse.engine.change_checks.append((FACTS_STAGE, facts_check(rules, directory.get, runtime)))
    within = settings.batch_within_ms / 1000.0

    def apply_facts(messages: Sequence[Any]) -> Writes:
        """Apply a batch of facts messages to the buckets (no await: the next batch sees
        them); the changed buckets, for the shipper to write to the changelog."""
        runtime.recover_watermark()
        writes = ChangelogWrites(table.data)
        runtime.store.write = writes
        with collector_paused():  # the batch's buckets live on: no rescans meanwhile
            for msg in messages:
                try:
                    scopes, wm = read_facts(msg.key, msg.value)
                except Exception as exc:  # a facts message of the wrong shape: skipped
                    runtime.skips.note("apply", "invalid_fact", type(exc).__name__)
                    continue
                writes.partition = msg.partition
                for scope, result in apply_message(runtime, scopes, wm):
                    if result.late or result.duplicates:
                        count_late(pulse, scope, result.late, result.duplicates)
                runtime.messages_applied += 1
        count_skips(pulse, runtime, skip_log)
        return writes.writes

    async def ship_facts(messages: Sequence[Any], ack: Callable[[], None], received: float) -> None:
        # applied with no await in between; the one shipper writes the buckets to their
        # changelog (in order with every other writer's), then acks the facts
        await pulse.shipper.put(
            BatchResult(writes=apply_facts(messages)),
            ack,
            received,
            changelog=table.changelog_topic.get_topic_name(),
            weight=len(messages),
        )

    async def on_facts(messages: list[Any]) -> None:
        received = time.monotonic()

        async def handle(chunk: list[Any]) -> None:
            await ship_facts(chunk, partial(app.consumer.ack_many, chunk), received)

        await in_chunks(messages, settings.batch_max, handle)

    if settings.batch_consumer:  # the facts straight from the fetch, as the ingest's events
        app.batch_handlers[facts_topic.get_topic_name()] = on_facts

    # With the batch consumer on, facts reach ``on_facts`` and this stream stays idle (it
    # subscribes the topic); with it off, this is the classic per-record Faust path.
    @app.agent(facts_topic, name="kpis")
    async def kpis(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_max, within=within):
            received = time.monotonic()
            messages = [event.message for event in events]
            await ship_facts(messages, partial(ack_events, events), received)

    @app.task
    async def publish() -> None:
        """Publish changed snapshots every interval. A round is paced so that it takes at
        most ``kpi_publish_max_share`` of the worker's time (:class:`Pacer`): a round over
        every scope, or a busy replay that moves the watermark every round, then takes
        longer (snapshots come less often) and the events go through at the same speed."""
        while True:
            started = time.monotonic()
            try:
                await publish_now(pulse, runtime, kpis_topic)
            except PublicationFailed as exc:  # as a failed shipment: the restart republishes
                log.error("%s; the worker stops", exc)
                await app.crash(exc)
                return
            except Exception:
                if app.should_stop:  # the producer closed under a round: nothing to report
                    return
                log.exception("KPI publication failed; retrying next round")
            count_skips(pulse, runtime, skip_log)
            spent = time.monotonic() - started
            await asyncio.sleep(max(settings.kpi_publish_interval_s - spent, 0.0))

    @app.page("/kpis")
    async def get_kpis(web: Any, request: Any) -> Any:
        filters = {k: request.query[k] for k in FILTERS if request.query.get(k)}
        found = runtime.query(filters)
        return web.json(
            {"watermark": runtime.status()["watermark"], "count": len(found), "snapshots": found}
        )

    @app.page("/kpis/status")
    async def get_status(web: Any, request: Any) -> Any:
        return web.json(runtime.status())

    pulse.watch("kpis", kpis)


class ChangelogWrites:
    """The KPI store's writer during one batch: each bucket goes to the table's data at
    once and is kept (last value per key, with the partition of the facts message that
    wrote it: the table is co-partitioned with the facts topic) for the shipper."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.partition = 0
        self.writes: Writes = {}

    def __call__(self, key: bytes, value: bytes) -> None:
        self.data[key] = value
        self.writes[key] = (self.partition, value)
