"""Batch delivery inside Faust's consumer: the batch-friendly way to use Faust.

Faust delivers every Kafka record on its own: the fetcher awaits one callback per record
(each wrapped in ``wait_first``, i.e. new tasks per record), the conductor decodes it into
an ``Event`` and queues it for the agent's stream. That machinery, not our code, caps a
worker at a few thousand events per second (``docs/performance.md``).

:class:`BatchingConsumer` keeps everything Faust does around records (group membership,
assignment, recovery of changelog-backed tables, read offsets and gaps, ack tracking,
commits, rebalances, the other topics and tables) and changes only one thing: records of
the topics that have a *batch handler* are handed over as one list per fetch
(``getmany``), instead of one awaited callback each. The handler must eventually
``ack`` every record (through :meth:`ack_many`); Faust commits only acked offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, cast

import faust
from aiokafka.consumer.fetcher import FetchResult
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

BatchHandler = Callable[[list[Any]], Awaitable[None]]
#: The rank of a batch topic that has none (handed over after the ranked ones).
LAST = 100


#: How long the broker may hold a fetch request open when none of its partitions has new
#: records (aiokafka's ``fetch_max_wait_ms``; Faust sets 1,500 ms).
FETCH_MAX_WAIT_MS = 100


class PromptFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose fetch requests the broker holds at most
    ``FETCH_MAX_WAIT_MS`` (the app's ``fetch_max_wait_ms``) instead of 1.5 s.

    aiokafka keeps one fetch request in flight per broker, for the partitions that hold
    no fetched records at that moment. When those are only quiet partitions (the internal
    topics, which get records only once the input moves) while the input's records are
    being judged, the broker holds that request until ``fetch_max_wait_ms``: the input,
    judged meanwhile, cannot be fetched again until then. With one broker this stopped
    the worker for up to 1.5 s at a time under a backlog. A request that returns empty
    after 100 ms costs far less than that wait."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", FETCH_MAX_WAIT_MS)
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        """Faust's fetch of the records of ``active_partitions``; records fetched for the
        other partitions no longer hold the broker's next fetch back (see
        :class:`ReleasingRecords`). Runs on the client's own thread."""
        fetcher = consumer._fetcher
        if fetcher is not None:
            records = fetcher._records
            if type(records) is not ReleasingRecords:
                fetcher._records = records = ReleasingRecords(records)
            records.read(active_partitions)
        return await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )


class ReleasingRecords(OrderedDict[Any, Any]):
    """aiokafka's fetched records by partition (its fetcher's ``_records``), where the
    records of a partition Faust does not read never hold the next fetch back.

    aiokafka sends no fetch to a broker while a partition of that broker holds records
    nobody took, for up to its ``prefetch_backoff`` (100 ms) after they came. Faust takes
    records of its active partitions only: after recovery, each table changelog partition
    (which the worker itself writes to) is fetched once more and its records stay unread.
    Each of them held every fetch, the input's included, back by up to 100 ms, once, in
    the first second of a worker's life (a saw-tooth in the alert latency).

    Only that wait is cut short, when the records come or when Faust stops reading their
    partition. Nothing else changes: the records stay buffered, their partition is not
    fetched again while they are there (aiokafka's rule), nothing is paused or resumed in
    the client, and a partition Faust reads again later finds its records where they were.
    """

    active: Collection[Any] | None = None

    def read(self, active: Collection[Any] | None) -> int:
        """Faust now reads ``active`` (``None``: every partition); releases the records
        already held for the others and returns how many partitions were released."""
        self.active = active
        if active is None:
            return 0
        released = 0
        for tp, fetched in self.items():
            if tp not in active and type(fetched) is FetchResult and fetched._backoff:
                fetched._backoff = 0
                released += 1
        return released

    def __setitem__(self, tp: Any, fetched: Any) -> None:
        active = self.active
        if active is not None and tp not in active and type(fetched) is FetchResult:
            fetched._backoff = 0
        super().__setitem__(tp, fetched)


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering the records of chosen topics in batches.

    Its drain loop leaves a heartbeat for ``/health`` (:mod:`streams.liveness`):
    ``fetch_beat`` is the monotonic time of the loop's last turn (``None`` before the first),
    ``drain_error`` the exception it died of, if it did.
    """

    fetch_beat: float | None = None
    drain_error: BaseException | None = None
    #: records dropped because their partition's position was moved back before them
    #: after they were fetched (see :func:`fetched_position`); fetched again
    dropped_after_seek: int = 0

    def _new_consumer_thread(self) -> PromptFetchThread:
        return PromptFetchThread(self, loop=self.loop, beacon=self.beacon)

    def ack_many(self, messages: list[Any]) -> None:
        """Faust's :meth:`ack` of each of ``messages`` (the same bookkeeping, line for
        line), under one acquisition of its lock instead of one per record."""
        acks_enabled_for = self.app.topics.acks_enabled_for
        committed_of = self._committed_offset
        acked_index_of = self._acked_index
        acked_of = self._acked
        unacked = self._unacked_messages
        n = 0
        with ack_lock:
            try:
                for message in messages:
                    if message.acked:
                        continue
                    message.acked = True
                    if not acks_enabled_for(message.topic):
                        continue
                    tp = message.tp
                    offset = message.offset
                    committed = committed_of[tp]
                    if committed is None or offset >= committed:
                        acked_index = acked_index_of[tp]
                        if offset not in acked_index:
                            unacked.discard(message)
                            acked_index.add(offset)
                            acked_of[tp].append(offset)
                            n += 1
            finally:
                self._n_acked += n
                notify(self._waiting_for_ack)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs Kafka
        # Mirrors faust.transport.consumer.Consumer._drain_messages (faust-streaming 0.15),
        # with records of batch topics collected per fetch and handed over at once.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        track_message = self.track_message
        handlers: dict[str, BatchHandler] = getattr(self.app, "batch_handlers", {})
        rank: dict[str, int] = getattr(self.app, "batch_rank", {})
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        def unread(tp: Any, message: Any) -> tuple[bool, int | None]:
            """Whether the record is new (Faust drops those already read too), and where
            the gap before it starts, if there is one to record (the topics with acks).
            Not a coroutine: one per record cost more than the check."""
            offset = message.offset
            r_offset = get_read_offset(tp)
            if r_offset is not None and offset < r_offset:
                return False, None
            if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                return True, r_offset + 1
            return True, None

        monotonic = time.monotonic
        self.drain_error = None
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.fetch_beat = monotonic()
                set_flag(CONSUMER_FETCHING)
                dropped = 0
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                batches: dict[str, list[Any]] = {}
                others: list[tuple[Any, Any]] = []
                if not self.should_stop:
                    client = self._thread._consumer
                    async for tp, message in ait:
                        position = fetched_position(client, tp)
                        if position is None or message.offset >= position:
                            # A seek (recovery seeks every partition to its commit) or a
                            # rebalance moved the partition back while this record was on
                            # its way from the client's thread. Taken, it would move the
                            # read offset past records the seek asked for again: Faust
                            # would then skip those as read, or record them as a gap and
                            # count them twice, and the committed offset crept one record
                            # per commit. The client fetches it again from the position.
                            dropped += 1
                            continue
                        topic = message.topic
                        if topic not in handlers:
                            others.append((tp, message))  # after the batches (see below)
                            continue
                        fresh, gap = unread(tp, message)
                        if not fresh:
                            continue
                        offset = message.offset
                        if gap is not None:
                            await self._add_gap(tp, gap, offset)
                        track_message(message)
                        batch = batches.get(topic)
                        if batch is None:
                            batches[topic] = batch = []
                        batch.append(message)
                        set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
                if dropped:
                    self.dropped_after_seek += dropped
                    self.log.info(
                        "%d records fetched before a seek dropped (fetched again)", dropped
                    )
                # The batch topics first, by rank (the input, then the owner-frequency hits:
                # their alerts should not wait for the KPI facts of the same fetch), then the
                # other records one by one, each partition in order, as Faust does.
                for topic in sorted(batches, key=lambda t: rank.get(t, LAST)):
                    await handlers[topic](batches[topic])
                for tp, message in others:
                    fresh, gap = unread(tp, message)
                    if not fresh:
                        continue
                    if gap is not None:
                        await self._add_gap(tp, gap, message.offset)
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, message.offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.drain_error = exc
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


def fetched_position(client: Any, tp: Any) -> int | None:
    """The aiokafka client's position of ``tp``: the offset it fetches next, past every
    record it has handed over since its last seek; ``None`` when the partition is not
    assigned (a rebalance) or its position is being reset. A record handed over at or
    past it was fetched before the partition was moved back, and will be fetched again."""
    subscription = client._subscription.subscription if client is not None else None
    assignment = subscription.assignment if subscription is not None else None
    state = assignment.state_value(tp) if assignment is not None else None
    if state is None or not state.has_valid_position:
        return None
    return int(state.position)


async def in_chunks(
    messages: list[Any], size: int, handle: Callable[[list[Any]], Awaitable[None]]
) -> None:
    """Hand the records of one fetch to ``handle`` ``size`` at a time, letting the other
    tasks (the shipper sending the previous chunk's alerts) run between chunks."""
    for start in range(0, len(messages), size):
        if start:
            await asyncio.sleep(0)
        await handle(messages[start : start + size])


def ack_events(events: Sequence[Any]) -> None:
    """Ack the Faust events of a batch taken with ``noack_take`` (the per-record path)."""
    for event in events:
        event.ack()


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class PulseApp(faust.App):
    """A Faust app whose consumer can deliver chosen topics in batches.

    ``batch_handlers`` maps a topic name to the coroutine that takes its records.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_handlers: dict[str, BatchHandler] = {}
        #: the order in which the batch topics' records of one fetch are handed over, lowest
        #: first (the topics whose records become alerts); unranked topics come last
        self.batch_rank: dict[str, int] = {}
        #: the consumer's ``fetch_max_wait_ms`` (see :class:`PromptFetchThread`)
        self.fetch_max_wait_ms = FETCH_MAX_WAIT_MS

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)
