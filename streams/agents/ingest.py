"""The ingest agent: batches from ``crm.events`` through the engine, results to the shipper.

The agent never waits for the broker: it takes a batch (without acking it), runs the pure
engine, applies the new record states to the in-memory table (so the next batch sees them)
and hands the batch to the one shipper (:mod:`streams.runtime.shipper`), which ships
alerts and derived records, then the changelog, then acks the batch's input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from streams.decode import RawRecord
from streams.gc_policy import collector_paused
from streams.runtime.container import Runtime
from streams.runtime.shipment import Queued, apply_writes
from streams.transport import ack_events, in_chunks

log = logging.getLogger(__name__)


def process_batch(
    rt: Runtime, messages: Sequence[Any], ack: Callable[[], None], received: float
) -> Queued:
    """Run the engine on Faust messages, apply the new states to the in-memory table and
    prepare the result for the shipper (its changes turned into KPI facts and owner hits,
    then dropped), all in one collector pause: the collector runs once the batch's
    objects that do not outlive it are gone."""
    records = [RawRecord(m.topic, m.partition, m.offset, m.key, m.value, timestamp_ms(m))
               for m in messages]  # fmt: skip
    with collector_paused():
        result = rt.engine.process(records, rt.state_get)
        apply_writes(rt.entity_table.data, result.writes)
        item = rt.shipper.prepare(result, ack, received, weight=len(messages))
        del records
    rt.metrics.batches.inc()
    rt.metrics.batch_size.observe(len(messages))
    if log.isEnabledFor(logging.DEBUG):  # alerts are on their topic; this is for debugging
        for alert in item.result.alerts:
            log.debug(
                "alert %s %s %s: %s",
                alert.status.value, alert.rule_id, alert.subject.id, alert.message,
            )  # fmt: skip
    return item


async def judge_chunk(
    rt: Runtime, messages: Sequence[Any], ack: Callable[[], None], received: float
) -> None:
    """One chunk of a fetch through :func:`process_batch` into the shipper's queue, then one
    turn of the loop, in which the shipper hands the chunk's alerts to the producer (before
    the fetch's KPI facts and owner hits are applied).

    The collector stays paused until then: the young collection that the chunk's objects
    trigger (5-15 ms in a live worker, finding nothing to free) delays the next chunk, no
    longer these alerts."""
    with collector_paused():
        await rt.shipper.enqueue(process_batch(rt, messages, ack, received))
        await asyncio.sleep(0)


def timestamp_ms(message: Any) -> int | None:
    """The Kafka timestamp of a consumed record in ms (Faust keeps it in seconds)."""
    ts = getattr(message, "timestamp", None)
    return round(ts * 1000) if ts else None


def register(app: Any, rt: Runtime) -> None:
    settings = rt.settings
    within = settings.batch_within_ms / 1000.0
    shipper = rt.shipper
    rules_ready = rt.rules_ready

    async def on_records(messages: list[Any]) -> None:
        received = time.monotonic()
        if not rules_ready.is_set():
            await rules_ready.wait()  # never evaluate events before the live rules are read

        async def handle(chunk: list[Any]) -> None:
            await judge_chunk(rt, chunk, partial(app.consumer.ack_many, chunk), received)

        await in_chunks(messages, settings.batch_max, handle)

    if settings.batch_consumer:
        events = rt.topics.events.get_topic_name()
        app.batch_handlers[events] = on_records
        app.batch_rank[events] = 0  # the input first: alerts before anything else

    # The agent subscribes the input topic (with acks) in Faust's conductor. With the batch
    # consumer on, records reach ``on_records`` and this stream stays idle; with it off,
    # this is the classic per-record Faust path, batched by ``noack_take``.
    @app.agent(rt.topics.events, name="ingest")
    async def ingest(stream: Any) -> None:
        await rules_ready.wait()  # never evaluate events before the live rules are read
        async for events in stream.noack_take(settings.batch_max, within=within):
            received = time.monotonic()
            messages = [event.message for event in events]
            await shipper.enqueue(
                process_batch(rt, messages, partial(ack_events, events), received)
            )

    rt.watch("ingest", ingest)
