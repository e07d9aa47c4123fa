"""The one shipper: every writer of a changelogged table hands its results here.

A writer (the ingest agent, the timers, the KPI rules, the retention sweep, the
owner-frequency agent, the CRM sources) reads, judges and applies its new states to its
in-memory table without awaiting in between, then queues the result with
:meth:`Shipper.put` (or :meth:`Shipper.submit` for the entity table). The shipper, one
task, in queue order:

1. gates the alerts (silences, notification budget), sends the records the writer built
   itself (a source's change events to ``crm.events``), dead letters, alerts and what the
   change hooks derive from the changes (KPI facts, owner-frequency hits) and waits for the
   broker's acknowledgements of all of them;
2. only then writes the states to their changelogs, and waits for those acks too;
3. only then calls each result's ``ack`` (its input records may be committed).

Results that queued up while the shipper waited for the broker are shipped together (a
group commit: one round of sends and acks for all of them, then their acks in order), so
the time a batch waits for the broker does not grow with the number of batches.

So a crash at any point replays from the last committed offset: an alert is never lost
(it is acknowledged before the state that remembers its event), and a replayed event either
meets its remembered id (nothing emitted) or emits the same ``alert_id`` and ``sequence``
again, which consumers deduplicate. Results are shipped in order, so a changelog never goes
back in time; the bounded queue gives backpressure. A shipment that fails crashes the
worker (nothing of it is acked; its input is replayed after the restart).

Records go straight to the app's Kafka producer (its accumulator batches them), not
through Faust's per-message ``Topic.send``/``send_soon`` buffer, which costs about a
millisecond per record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streams.alerting.source_alerts import RecordLinks
from streams.errors import PulseError
from streams.judge.result import BatchResult
from streams.metrics import Metrics
from streams.outputs import alert_value, dead_letter_record
from streams.produce import group_commit, send_batched
from streams.rules.change import Change
from streams.runtime.alerting import AlertingRuntime
from streams.settings import Settings

log = logging.getLogger(__name__)

#: Derives records from a shipment's accepted changes (KPI facts, owner-frequency hits);
#: returns the delivery futures, which the shipper awaits with the alerts'.
ChangeHook = Callable[[Sequence[Change]], Awaitable[list[asyncio.Future[Any]]]]
#: State writes of a table: key -> (partition, encoded state or ``None``, a tombstone).
Writes = dict[bytes, tuple[int, bytes | None]]


class Record(NamedTuple):
    """A record a writer built itself (a CRM source's change event, keyed by its
    ``entity_id``): sent as it is, in order, acknowledged before the writer's ack."""

    topic: str
    key: bytes | None
    value: bytes


#: Results queued at most before :meth:`Shipper.put` waits (backpressure).
MAX_PENDING = 8


@dataclass
class Shipment:
    """One or more queued results, merged in queue order."""

    result: BatchResult
    #: changelog topic -> the last write of each key (in the order the results wrote them)
    writes: dict[str, Writes] = field(default_factory=dict)
    #: the writers' own records, in queue order
    records: list[Record] = field(default_factory=list)


@dataclass
class _Item:
    result: BatchResult
    changelog: str | None  # None: the entity table's changelog
    ack: Callable[[], None]
    received: float
    records: Sequence[Record] = ()


class ShipProgress:
    """The shipper's progress seen from outside: how long it has had work pending without
    completing a shipment (a broker that does not acknowledge)."""

    def __init__(self) -> None:
        self._shipped = -1.0
        self._since = 0.0

    def observe(self, shipped: float, pending: bool, now: float) -> float | None:
        """``shipped``: shipments done so far; ``None`` while the shipper is idle."""
        if shipped != self._shipped or not pending:
            self._shipped, self._since = shipped, now
        return now - self._since if pending else None


def merge(items: Sequence[tuple[BatchResult, str]]) -> Shipment:
    """Consecutive ``(result, changelog)`` as one shipment, in order: outputs concatenated,
    each record's last state kept per changelog (a later result saw the earlier one's
    states, so its write supersedes). Only the statistics the shipper still records (rule
    skips) are summed; the others were counted when each result was queued."""
    if len(items) == 1:
        result, changelog = items[0]
        return Shipment(result, {changelog: result.writes} if result.writes else {})
    merged = BatchResult()
    writes: dict[str, Writes] = {}
    for result, changelog in items:
        merged.alerts.extend(result.alerts)
        merged.dead.extend(result.dead)
        merged.changes.extend(result.changes)
        table = writes.setdefault(changelog, {})
        for key, write in result.writes.items():
            table.pop(key, None)  # re-inserted: the changelog order follows the results
            table[key] = write
        merged.due.update(result.due)
        merged.stats.skips.update(result.stats.skips)
    return Shipment(merged, {name: w for name, w in writes.items() if w})


def apply_writes(data: Any, writes: Writes) -> None:
    """Apply new states to a table's in-memory data (the changelog follows, shipped)."""
    for key, (_, blob) in writes.items():
        if blob is None:  # the record leaves the hot state (retention)
            data.pop(key, None)
        else:
            data[key] = blob


def _nothing() -> None:
    return None


class ShipmentTimeout(PulseError):
    """A shipment was not acknowledged within its bound: the worker stops."""


class Shipper:
    """Ships results in order, off the writers' path (see the module docstring)."""

    def __init__(
        self,
        *,
        app: Any,
        settings: Settings,
        metrics: Metrics,
        alerting: AlertingRuntime,
        entity_table: Any,
        clock: Callable[[], datetime],
        change_hooks: Sequence[ChangeHook],
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.alerting = alerting
        self.entity_table = entity_table
        self.clock = clock
        #: read at each shipment: hooks registered later take part from then on
        self.change_hooks = change_hooks
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(max_pending)
        self.task: asyncio.Task[None] | None = None
        self._entity_changelog: str | None = None
        #: links back to the CRM record pages (set when sources are configured)
        self.links: RecordLinks | None = None

    # --- what the writers call --------------------------------------------------------
    async def put(
        self,
        result: BatchResult,
        ack: Callable[[], None],
        received: float,
        *,
        changelog: str | None = None,
        records: Sequence[Record] = (),
    ) -> None:
        """Queue one result whose states the caller has applied to its table already;
        ``ack`` acknowledges its input records once it is shipped. ``changelog``: the
        changelog topic of its writes (default: the entity table's); ``records``: records
        the writer built itself, sent in order with the result's outputs."""
        self.count(result)
        if self.task is None or self.task.done():
            if self.task is not None and self.task.done() and not self.task.cancelled():
                self.task.result()  # a crashed shipper crashes the writer: never silent
            self.task = asyncio.create_task(self._run(), name="crm-pulse-shipper")
        await self.queue.put(_Item(result, changelog, ack, received, records))

    async def submit(self, result: BatchResult, ack: Callable[[], None] | None = None) -> None:
        """Apply ``result``'s states to the entity table, then queue it (with no await in
        between: a writer that read the table before never overwrites a newer state)."""
        apply_writes(self.entity_table.data, result.writes)
        await self.put(result, ack or _nothing, time.monotonic())

    # --- seen from outside (/health) ----------------------------------------------------
    @property
    def pending(self) -> bool:
        """Results queued or being shipped."""
        return getattr(self.queue, "_unfinished_tasks", 0) > 0

    def failure(self) -> str | None:
        """Why the shipping task has ended (``None`` while it runs or before it starts)."""
        task = self.task
        if task is None or not task.done():
            return None
        if task.cancelled():
            return "cancelled"
        exc = task.exception()
        return repr(exc) if exc is not None else "returned"

    # --- the shipping task --------------------------------------------------------------
    @property
    def entity_changelog(self) -> str:
        if self._entity_changelog is None:
            self._entity_changelog = str(self.entity_table.changelog_topic.get_topic_name())
        return self._entity_changelog

    async def _run(self) -> None:
        queue = self.queue
        while True:
            async with group_commit(queue) as taken:
                try:
                    shipment = merge(
                        [(i.result, i.changelog or self.entity_changelog) for i in taken]
                    )
                    shipment.records = [r for i in taken for r in i.records]
                    await self.ship_within_bound(shipment, min(i.received for i in taken))
                    for item in taken:
                        item.ack()
                except Exception as exc:
                    # nothing of these results is acked: the worker stops (a supervisor
                    # restarts it) and the input is replayed from the last commit. Waiting
                    # for the next result to notice would stall the worker silently when
                    # none comes.
                    log.exception(
                        "shipping failed; the worker stops, its unacked input is replayed"
                    )
                    await self.app.crash(exc)
                    raise

    async def ship_within_bound(self, shipment: Shipment, received: float) -> None:
        """:meth:`ship`, failed with :class:`ShipmentTimeout` when the broker has not
        acknowledged it within twice ``producer_request_timeout_s`` (a send and one retry).

        The producer's own timeout does not cover every case: a batch whose partition leader
        is known but cannot be reached (a frozen broker) may wait in the accumulator with no
        deadline. The bound makes the setting's promise hold: an unacknowledged shipment
        stops the worker, and its input is replayed after the restart."""
        bound = 2 * self.settings.producer_request_timeout_s
        try:
            await asyncio.wait_for(self.ship(shipment, received), bound)
        except TimeoutError as exc:
            raise ShipmentTimeout(
                f"the broker acknowledged no shipment within {bound:g} s "
                "(2 x CRM_PULSE_PRODUCER_REQUEST_TIMEOUT_S)"
            ) from exc

    async def ship(self, shipment: Shipment, received: float) -> None:
        """Send what the results produced, wait for the acks, then write the changelogs."""
        result = shipment.result
        send = self.app.producer.send
        settings = self.settings
        m = self.metrics
        if result.alerts:
            await self.alerting.ready()  # after a start: the budget is rebuilt first
        result.alerts = self.alerting.gate(result.alerts, self.clock(), m)
        if self.links is not None:  # the record's page in its CRM
            result.alerts = self.links.apply(result.alerts)
        futures: list[Any] = []
        if result.changes:  # KPI facts, owner-frequency hits: acked before the state writes
            for on_changes in self.change_hooks:
                futures.extend(await on_changes(result.changes))
        for record in shipment.records:  # in order: a source's events
            futures.append(await send(record.topic, record.key, record.value, None, None, None))
        limit = settings.max_message_bytes
        cut = m.oversized_outputs
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
        m.ship_seconds.observe(done - started)
        m.produced.labels(kind="alert").inc(len(result.alerts))
        m.produced.labels(kind="dead_letter").inc(len(result.dead))
        if shipment.records:
            m.produced.labels(kind="event").inc(len(shipment.records))
        m.produced.labels(kind="changelog").inc(sum(len(w) for w in shipment.writes.values()))
        # delivered before the input is acked (the caller acks after this returns): a crash
        # after the ack finds every state of the shipment in its changelog
        if shipment.writes:
            producer = self.app.producer._ensure_producer()
            written: list[asyncio.Future[Any]] = []
            for changelog, writes in shipment.writes.items():
                written += await send_batched(
                    producer, changelog,
                    ((partition, key, blob) for key, (partition, blob) in writes.items()),
                )  # fmt: skip
            if written:
                await asyncio.gather(*written)
        for (rule, reason), n in result.stats.skips.items():
            m.rule_skips.labels(rule=rule, reason=reason).inc(n)
        self.alerting.schedule(result.due, m)  # timer deadlines of the new states
        self.observe_latency(result, done - received)

    # --- metrics ------------------------------------------------------------------------
    def count(self, result: BatchResult) -> None:
        """Counters of one result, recorded when it is queued (so a reader who sees its
        output on Kafka also sees it counted)."""
        m = self.metrics
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
        if result.alerts:  # one label lookup per kind of alert, not per alert
            kinds = Counter(
                (alert.rule_id, alert.severity.value, alert.status.value) for alert in result.alerts
            )
            for (rule, severity, status), n in kinds.items():
                m.alerts.labels(rule=rule, severity=severity, status=status).inc(n)
        if self.settings.metrics_owner_label:  # opt-in: owner ids are unbounded in general
            for alert in result.alerts:
                if alert.owner_id:
                    m.alerts_by_owner.labels(owner=alert.owner_id).inc()

    def observe_latency(self, result: BatchResult, latency: float) -> None:
        """Received -> alert acknowledged, and event time -> alert acknowledged."""
        m = self.metrics
        now = datetime.now(UTC)
        for alert in result.alerts:
            m.processing_latency.observe(latency)
            if alert.occurred_at is not None:
                m.event_to_alert_latency.observe(
                    max(0.0, (now - alert.occurred_at).total_seconds())
                )
