"""The owner-frequency agent: ``frequency`` rules with ``per: owner`` across partitions.

The shipper hands each queued result's changes to :class:`HitsHook` (a change hook of
the container), which finds the owner hits; the shipper's send stage sends them with the
alerts (a hit may become an alert) to the internal ``<prefix>.frequency`` topic keyed by
owner, and awaits their acks before the record states are written. The ``frequency``
agent counts them per (rule, owner) in the ``frequency-counts`` table (changelogged,
co-partitioned with the topic) and hands the result to the same shipper: alerts
acknowledged first, then the count states on the table's changelog, then the input acked.
The logic is in :mod:`streams.judge.owner`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from streams.decode import RawRecord
from streams.judge.owner import count_hits, owner_hits, owner_partition
from streams.judge.result import BatchResult
from streams.produce import send_batched
from streams.rules.change import Change
from streams.runtime.container import RAW, RAW_SER, Runtime
from streams.runtime.shipment import apply_writes
from streams.transport import ack_events, in_chunks

log = logging.getLogger(__name__)


class HitsHook:
    """The shipper's owner-frequency change hook: each queued result's owner hits (judged
    with the rules its changes were judged with), sent by the send stage with each
    shipment's alerts to the frequency topic keyed by owner; the shipper awaits their acks
    with the alerts', before the record states are written."""

    #: sent with the alerts: a hit may become an alert of its own further on
    prompt = True

    def __init__(self, rt: Runtime, producer: Any, topic: str) -> None:
        self.rt = rt
        self.producer = producer
        self.topic = topic

    def derive(self, changes: Sequence[Change]) -> BatchResult:
        return owner_hits(self.rt.engine.rules, changes)

    async def send(self, derived: Sequence[BatchResult]) -> list[asyncio.Future[Any]]:
        metrics = self.rt.metrics
        for found in derived:
            for (rule, reason), n in found.stats.skips.items():
                metrics.rule_skips.labels(rule=rule, reason=reason).inc(n)
            for rule, n in found.stats.rule_errors.items():
                metrics.rule_errors.labels(rule=rule).inc(n)
        hits = [hit for found in derived for hit in found.derived]
        if not hits:
            return []
        parts = self.rt.settings.topic_partitions
        return await send_batched(
            self.producer._ensure_producer(),
            self.topic,
            ((owner_partition(owner, parts), owner.encode(), value) for owner, value in hits),
        )


def register(app: Any, rt: Runtime) -> None:
    settings = rt.settings
    parts = settings.topic_partitions
    topic = app.topic(settings.frequency_topic, partitions=parts, internal=True, **RAW, **RAW_SER)
    table = app.Table(
        "frequency-counts", partitions=parts, help="Frequency counts per rule and owner.", **RAW
    )

    rt.change_hooks.append(HitsHook(rt, app.producer, topic.get_topic_name()))
    within = settings.batch_within_ms / 1000.0

    def lookup(key: bytes) -> bytes | None:
        value = table.data.get(key)
        return value if value is None or isinstance(value, bytes) else bytes(value)

    async def count(messages: Sequence[Any], ack: Callable[[], None], received: float) -> None:
        records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]
        result = count_hits(rt.engine.rules, records, lookup, rt.engine.clock())
        apply_writes(table.data, result.writes)
        if result.stats.invalid:
            log.warning("owner-frequency hits dropped: %s", dict(result.stats.invalid))
        for alert in result.alerts:
            log.info("alert %s %s %s: %s", alert.status.value, alert.rule_id,
                     alert.subject.id, alert.message)  # fmt: skip
        # read, counted and applied with no await in between; the shipper ships the
        # alerts, then the counts, then acks the hits
        changelog = table.changelog_topic.get_topic_name()
        await rt.shipper.put(result, ack, received, changelog=changelog, weight=len(messages))

    async def on_hits(messages: list[Any]) -> None:
        received = time.monotonic()
        if not rt.rules_ready.is_set():
            await rt.rules_ready.wait()  # count with the live rules, never the files' ones

        async def handle(chunk: list[Any]) -> None:
            await count(chunk, partial(app.consumer.ack_many, chunk), received)

        await in_chunks(messages, settings.batch_max, handle)

    if settings.batch_consumer:  # the hits straight from the fetch, as the ingest's events
        app.batch_handlers[topic.get_topic_name()] = on_hits
        app.batch_rank[topic.get_topic_name()] = 1  # after the input: hits become alerts

    # With the batch consumer on, hits reach ``on_hits`` and this stream stays idle (it
    # subscribes the topic); with it off, this is the classic per-record Faust path.
    @app.agent(topic, name="frequency")
    async def frequency(stream: Any) -> None:
        await rt.rules_ready.wait()  # count with the live rules, never the files' ones
        async for events in stream.noack_take(settings.batch_max, within=within):
            received = time.monotonic()
            await count([e.message for e in events], partial(ack_events, events), received)

    rt.watch("frequency", frequency)
