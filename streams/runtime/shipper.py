"""The one shipper: every writer of a changelogged table hands its results here.

A writer (the ingest agent, the timers, the KPI rules, the retention sweep, the
owner-frequency agent, the CRM sources) reads, judges and applies its new states to its
in-memory table without awaiting in between, then queues the result with
:meth:`Shipper.put` (or :meth:`Shipper.submit` for the entity table). The shipper works in
two stages, each in queue order:

1. **send**: it takes every result queued so far (one shipment), gates the alerts
   (silences, notification budget) and hands to the producer the alerts, dead letters, the
   records the writer built itself (a source's change events to ``crm.events``) and what
   the prompt change hooks derived (owner-frequency hits, which become alerts further on).
   It does not wait for the broker: an alert never waits for an earlier batch's round trips;
2. **write**: it takes the shipments sent so far, in order, sends what the other change
   hooks derived from all of them at once (KPI facts: one message per scope for all of
   them), waits for the acknowledgements of all their outputs, only then writes their
   states to the changelogs (the last state of each key), waits for those acks too, and
   only then calls each result's ``ack`` (its input records may be committed).

Shipments sent while the writer waited for the broker are written together (a group
commit), so the time a batch waits for the broker does not grow with the number of
batches, and the facts messages get fewer as the load grows.

So a crash at any point replays from the last committed offset: an alert is never lost
(it is acknowledged before the state that remembers its event), and a replayed event either
meets its remembered id (nothing emitted) or emits the same ``alert_id`` and ``sequence``
again, which consumers deduplicate. Outputs and changelogs are each sent in queue order (the
producer keeps the order of a partition), so a changelog never goes back in time. Writers
wait while too many input records are outstanding (:data:`MAX_OUTSTANDING_RECORDS`). A
shipment that fails, or that the broker does not acknowledge in time, crashes the worker
(nothing of it is acked; its input is replayed after the restart).

A result's accepted changes (:class:`~streams.rules.change.Change` objects, with their
events and before/after fields) are turned into what each change hook sends the moment
the result is queued (:meth:`ChangeHook.derive`), then dropped: holding them until the
write stage kept tens of thousands of objects alive that the garbage collector scanned
again and again (about a quarter of the worker's time at the benchmark's size).

Records go straight to the app's Kafka producer (its accumulator batches them), not
through Faust's per-message ``Topic.send``/``send_soon`` buffer, which costs about a
millisecond per record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, TypeVar, Unpack

from streams.alerting.source_alerts import RecordLinks
from streams.errors import PulseError
from streams.judge.result import BatchResult
from streams.metrics import Metrics
from streams.outputs import alert_value, dead_letter_record
from streams.produce import send_batched
from streams.runtime.alerting import AlertingRuntime
from streams.runtime.credit import Credit
from streams.runtime.shipment import (
    ChangeHook,
    Queued,
    Record,
    Shipment,
    apply_writes,
    merge,
    merge_writes,
)
from streams.runtime.shipped_counts import count_result, observe_latency
from streams.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


#: Input records of the results queued or being shipped (sent, not written yet), at most,
#: before :meth:`Shipper.put` waits (backpressure). A result holds its input records,
#: alerts, derived records and states until it is written: this bounds the memory and the
#: objects the garbage collector scans, whatever the number of shipments in flight.
#: Counted in records, not results: small batches under a light load never wait.
MAX_OUTSTANDING_RECORDS = 16_000


@dataclass
class _Sent:
    """A shipment whose outputs are handed to the producer: what the write stage needs."""

    items: list[Queued]
    shipment: Shipment
    outputs: list[asyncio.Future[Any]]
    received: float  # when its earliest result's input was received
    sent_at: float  # when its outputs were handed to the producer


def _nothing() -> None:
    return None


class ShipmentTimeout(PulseError):
    """A shipment was not acknowledged within its bound: the worker stops."""


class How(TypedDict, total=False):
    """How a result is shipped (:meth:`Shipper.prepare`'s keywords)."""

    changelog: str | None
    records: Sequence[Record]
    weight: int | None


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
        max_outstanding: int = MAX_OUTSTANDING_RECORDS,
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.alerting = alerting
        self.entity_table = entity_table
        self.clock = clock
        #: read at each shipment: hooks registered later take part from then on
        self.change_hooks = change_hooks
        self.queue: asyncio.Queue[Queued] = asyncio.Queue()
        #: room for outstanding input records (taken in turn: a writer that waits is never
        #: overtaken by one that comes later, so results are queued in the order their
        #: states were applied)
        self._room = Credit(max_outstanding)
        self.task: asyncio.Task[None] | None = None
        #: results taken from the queue and not finished yet (sent, or being written), in
        #: queue order: the write stage finishes them in that order
        self._held: deque[Queued] = deque()
        self._entity_changelog: str | None = None
        #: links back to the CRM record pages (set when sources are configured)
        self.links: RecordLinks | None = None

    # --- what the writers call --------------------------------------------------------
    async def put(
        self, result: BatchResult, ack: Callable[[], None], received: float, **how: Unpack[How]
    ) -> None:
        """Queue one result whose states the caller has applied to its table already;
        ``ack`` acknowledges its input records once it is shipped (:meth:`prepare`, then
        :meth:`enqueue`)."""
        await self.enqueue(self.prepare(result, ack, received, **how))

    def prepare(
        self,
        result: BatchResult,
        ack: Callable[[], None],
        received: float,
        *,
        changelog: str | None = None,
        records: Sequence[Record] = (),
        weight: int | None = None,
    ) -> Queued:
        """The first, synchronous half of :meth:`put` (a writer may run it in the same
        collector pause as its judging): counts the result and has each change hook derive
        its records from the result's changes, which are then dropped. ``changelog``: the
        changelog topic of its writes (default: the entity table's); ``records``: records
        the writer built itself, sent in order with the result's outputs; ``weight``: its
        input records, what it holds until it is written (default: one, or its records)."""
        self.count(result)
        derived: list[tuple[ChangeHook, Any]] = []
        if result.changes:
            changes = result.changes
            derived = [(hook, hook.derive(changes)) for hook in self.change_hooks]
            result.changes = []  # released now, not when the shipment is written
        weight = weight if weight is not None else max(1, len(records))
        return Queued(result, changelog, ack, received, records, derived, weight)

    async def enqueue(self, item: Queued) -> None:
        """The second half of :meth:`put`: into the queue, once there is room."""
        if self.task is None or self.task.done():
            if self.task is not None and self.task.done() and not self.task.cancelled():
                self.task.result()  # a crashed shipper crashes the writer: never silent
            self.task = asyncio.create_task(self._run(), name="crm-pulse-shipper")
        item.weight = await self._room.take(item.weight)
        self.queue.put_nowait(item)

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
        """The two stages, until one fails: then the worker stops (a supervisor restarts
        it) and the unacked input is replayed from the last commit. Waiting for the next
        result to notice would stall the worker silently when none comes."""
        # not bounded here: the credit (in input records) bounds what is outstanding, and
        # a send stage that waited for the write stage held the next alerts back for a
        # whole write round (two broker round trips)
        sent: asyncio.Queue[_Sent] = asyncio.Queue()
        stages = {
            asyncio.create_task(self._send_stage(sent), name="crm-pulse-shipper-send"),
            asyncio.create_task(self._write_stage(sent), name="crm-pulse-shipper-write"),
        }
        try:
            done, _ = await asyncio.wait(stages, return_when=asyncio.FIRST_COMPLETED)
            for stage in done:
                stage.result()
            raise RuntimeError("a shipper stage returned")  # pragma: no cover - loops forever
        except Exception as exc:
            log.exception("shipping failed; the worker stops, its unacked input is replayed")
            await self.app.crash(exc)
            raise
        finally:
            for stage in stages:
                stage.cancel()
            await asyncio.gather(*stages, return_exceptions=True)
            self._done(len(self._held))  # taken, never acked: no longer pending either

    def _done(self, count: int) -> None:
        """The ``count`` oldest results taken from the queue are finished (acked, or never
        will be): off the queue's count, their records' room given back."""
        for _ in range(count):
            self.queue.task_done()
            self._room.give(self._held.popleft().weight)

    async def _within_bound(self, work: Awaitable[T]) -> T:
        """``work``, failed with :class:`ShipmentTimeout` past ``settings.ack_bound_s``: an
        unacknowledged shipment stops the worker, and its input is replayed after the
        restart (the producer's own timeout does not cover a frozen broker)."""
        bound = self.settings.ack_bound_s
        try:
            return await asyncio.wait_for(work, bound)
        except TimeoutError as exc:
            raise ShipmentTimeout(
                f"the broker acknowledged no shipment within {bound:g} s "
                "(2 x CRM_PULSE_PRODUCER_REQUEST_TIMEOUT_S)"
            ) from exc

    async def _send_stage(self, sent: asyncio.Queue[_Sent]) -> None:
        queue = self.queue
        while True:
            taken = [await queue.get()]
            while not queue.empty():
                taken.append(queue.get_nowait())
            self._held.extend(taken)  # finished by the write stage, or by _run on a failure
            shipment = merge([(i.result, i.changelog or self.entity_changelog) for i in taken])
            shipment.records = [r for i in taken for r in i.records]
            outputs = await self._within_bound(self.send_outputs(shipment))
            outputs += await self._within_bound(self.send_derived(taken, prompt=True))
            received = min(i.received for i in taken)
            await sent.put(_Sent(taken, shipment, outputs, received, time.monotonic()))

    async def _write_stage(self, sent: asyncio.Queue[_Sent]) -> None:
        while True:
            taken = [await sent.get()]
            while not sent.empty():
                taken.append(sent.get_nowait())
            await self._within_bound(self.write_states(taken))
            for shipped in taken:
                for item in shipped.items:
                    item.ack()
                self._done(len(shipped.items))

    async def send_outputs(self, shipment: Shipment) -> list[asyncio.Future[Any]]:
        """Hand the shipment's outputs to the producer, alerts first; their delivery
        futures (awaited by the write stage before any state of the shipment is written)."""
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
        limit = settings.max_message_bytes
        cut = m.oversized_outputs
        for alert in result.alerts:
            value, was_cut = alert_value(alert, limit)
            if was_cut:
                cut.labels(kind="alert").inc()
            futures.append(
                await send(settings.alerts_topic, alert.alert_id.encode(), value, None, None, None)
            )
        for raw, dead in result.dead:
            letter, headers, was_cut = dead_letter_record(raw.key, raw.value, dead, limit)
            if was_cut:
                cut.labels(kind="dead_letter").inc()
            futures.append(await send(settings.dlq_topic, raw.key, letter, None, None, headers))
        for record in shipment.records:  # in order: a source's events
            futures.append(await send(record.topic, record.key, record.value, None, None, None))
        m.produced.labels(kind="alert").inc(len(result.alerts))
        m.produced.labels(kind="dead_letter").inc(len(result.dead))
        if shipment.records:
            m.produced.labels(kind="event").inc(len(shipment.records))
        return futures

    async def send_derived(
        self, items: Sequence[Queued], *, prompt: bool
    ) -> list[asyncio.Future[Any]]:
        """Send what the change hooks (the prompt ones, or the others) derived from
        ``items``' changes: each hook once, for all of them in queue order."""
        by_hook: dict[ChangeHook, list[Any]] = {}
        for item in items:
            for hook, derived in item.derived:
                if hook.prompt is prompt:
                    by_hook.setdefault(hook, []).append(derived)
        futures: list[asyncio.Future[Any]] = []
        for hook, derived_in_order in by_hook.items():
            futures += await hook.send(derived_in_order)
        return futures

    async def write_states(self, sent: Sequence[_Sent]) -> None:
        """Wait for the outputs of ``sent`` (consecutive shipments), then write their states
        to the changelogs and wait for those acks too."""
        m = self.metrics
        outputs = [future for shipped in sent for future in shipped.outputs]
        # what the grouped change hooks derived (KPI facts) is sent here, for every
        # shipment sent meanwhile at once: one facts message per scope for all of them,
        # not one per batch. Acknowledged, like the alerts, before the state writes.
        items = [item for shipped in sent for item in shipped.items]
        outputs += await self.send_derived(items, prompt=False)
        if outputs:
            await asyncio.gather(*outputs)
        done = time.monotonic()
        for shipped in sent:
            m.ship_seconds.observe(done - shipped.sent_at)
        writes = merge_writes([shipped.shipment for shipped in sent])
        m.produced.labels(kind="changelog").inc(sum(len(w) for w in writes.values()))
        # delivered before the input is acked (the caller acks after this returns): a crash
        # after the ack finds every state of the shipment in its changelog
        if writes:
            producer = self.app.producer._ensure_producer()
            written: list[asyncio.Future[Any]] = []
            for changelog, table in writes.items():
                written += await send_batched(
                    producer, changelog,
                    ((partition, key, blob) for key, (partition, blob) in table.items()),
                )  # fmt: skip
            if written:
                await asyncio.gather(*written)
        for shipped in sent:
            result = shipped.shipment.result
            for (rule, reason), n in result.stats.skips.items():
                m.rule_skips.labels(rule=rule, reason=reason).inc(n)
            self.alerting.schedule(result.due, m)  # timer deadlines of the new states
            self.observe_latency(result, done - shipped.received)

    # --- metrics ------------------------------------------------------------------------
    def count(self, result: BatchResult) -> None:
        """Counters of one result, recorded when it is queued (so a reader who sees its
        output on Kafka also sees it counted)."""
        count_result(self.metrics, result, owner_label=self.settings.metrics_owner_label)

    def observe_latency(self, result: BatchResult, latency: float) -> None:
        observe_latency(self.metrics, result, latency)
