"""Kafka plumbing of the benchmark: create topics, produce fast or paced, read back."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from benchmarks.events import Workload
from streams.runtime.broker import LocalKafka
from streams.settings import Settings

PRODUCER_CONFIG: dict[str, Any] = {"linger_ms": 20, "max_batch_size": 512 * 1024, "acks": 1}


@contextlib.contextmanager
def kafka_for(
    bootstrap: str | None, work: Path, say: Callable[[str], None] | None = None
) -> Iterator[str]:
    """The bootstrap address to measure against: ``bootstrap`` when given, else that of a
    local Kafka (the settings' version, a 1 GiB heap, its files in ``work/kafka``) that runs
    for the ``with`` block; ``say`` is told where it listens."""
    if bootstrap:
        yield bootstrap
        return
    settings = Settings()
    with LocalKafka(
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        heap="1g",
        work_dir=work / "kafka",
    ) as broker:
        if say is not None:
            say(f"local Kafka on {broker.bootstrap}")
        yield broker.bootstrap


async def _partitions(producer: AIOKafkaProducer, topic: str) -> list[int]:
    return sorted(await producer.partitions_for(topic))


async def produce_fast(
    bootstrap: str, topic: str, workload: Workload, timestamps_ms: Sequence[int] | None = None
) -> float:
    """Produce every event of ``workload`` as fast as possible (batches built by hand, one
    send per full batch, no await per event); returns the seconds it took. Each record's
    Kafka timestamp is ``timestamps_ms[i]`` when given, else the producer's clock."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_CONFIG)
    await producer.start()
    started = time.perf_counter()
    try:
        parts = await _partitions(producer, topic)
        partitioner = DefaultPartitioner()
        batches: dict[int, Any] = {}
        pending: list[asyncio.Future[Any]] = []
        stamps: Sequence[int | None] = (
            [None] * len(workload) if timestamps_ms is None else timestamps_ms
        )
        for key, value, ts in zip(workload.keys, workload.values, stamps, strict=True):
            partition = partitioner(key, parts, parts)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=ts) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=ts)
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


@dataclass
class PacedResult:
    sent: int
    seconds: float
    #: event id -> timestamp (epoch ms) written on its Kafka record
    sent_at_ms: dict[str, int] = field(default_factory=dict)

    @property
    def offered_eps(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


async def produce_paced(
    bootstrap: str, topic: str, workload: Workload, rate: float, tick_s: float = 0.005
) -> PacedResult:
    """Offer ``workload`` at ``rate`` events/s: every tick, send what is due by then (no await
    per event). Each record carries its produce time as Kafka timestamp, kept per event id.

    The load must not pause: a pause followed by the burst that catches up shows as alert
    latency of the worker. So the collector of this process is off while it sends (the
    workload is built before), and acknowledged sends are only checked, never awaited,
    until the end (awaiting every 5,000 sends paused the load by up to 80 ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks=1)
    await producer.start()
    sent_at: dict[str, int] = {}
    pending: list[asyncio.Future[Any]] = []
    sent = 0
    total = len(workload)
    collecting = gc.isenabled()
    gc.disable()
    started = time.perf_counter()
    try:
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                now_ms = int(time.time() * 1000)
                pending.append(
                    await producer.send(
                        topic,
                        value=workload.values[sent],
                        key=workload.keys[sent],
                        timestamp_ms=now_ms,
                    )
                )
                event_id = workload.event_ids[sent]
                if event_id is not None:
                    sent_at[event_id] = now_ms
                sent += 1
            if len(pending) > 5000:
                pending = unacknowledged(pending)
            await asyncio.sleep(tick_s)
        await asyncio.gather(*pending)
    finally:
        if collecting:
            gc.enable()
        await producer.stop()
    return PacedResult(sent, time.perf_counter() - started, sent_at)


def unacknowledged(futures: list[asyncio.Future[Any]]) -> list[asyncio.Future[Any]]:
    """The sends not acknowledged yet; a failed send raises its error."""
    waiting = []
    for future in futures:
        if future.done():
            future.result()
        else:
            waiting.append(future)
    return waiting


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: int(off) for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, timeout: float = 120.0) -> list[Any]:
    """Every record of ``topic`` up to its end offsets at call time."""
    ends = await end_offsets(bootstrap, topic)
    wanted = {p: end for p, end in ends.items() if end > 0}
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 2**20,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=20000)
            for batch in batches.values():
                records.extend(batch)
            positions = {tp.partition: await consumer.position(tp) for tp in tps}
            if all(positions[p] >= end for p, end in wanted.items()):
                break
    finally:
        await consumer.stop()
    return records


def latest_per_key(records: Sequence[Any]) -> dict[bytes, bytes]:
    """The compacted view of a changelog: last value per key, tombstones removed."""
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        latest[record.key] = record.value
    return {key: value for key, value in latest.items() if value is not None}
