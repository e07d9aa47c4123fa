"""Records to one topic partition, handed to the Kafka producer as whole batches.

``producer.send`` costs tens of microseconds per record in Python (partitioner, accumulator
bookkeeping, one coroutine each). State changelog writes know their partition already, so
they are appended to aiokafka batch builders and each full batch is submitted once. The
batches join the producer's accumulator like any other: Faust's flush before each offset
commit waits for them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any


async def send_batched(
    producer: Any, topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]]
) -> list[asyncio.Future[Any]]:
    """Send ``(partition, key, value)`` records (a ``None`` value: a tombstone; a ``None``
    key: no key); one future per submitted batch.

    ``producer`` is an ``aiokafka.AIOKafkaProducer``. Records of one partition keep their
    order (each partition's batches are submitted in order).
    """
    builders: dict[int, Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for partition, key, value in records:
        batch = builders.get(partition)
        if batch is None:
            batch = builders[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = builders[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes exceeds the batch size")
    for partition, batch in builders.items():
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


#: (topic, partition count) -> key -> partition: scope and snapshot keys recur every batch.
_PARTITIONS: dict[tuple[str, int], dict[bytes, int]] = {}
_MAX_CACHED = 200_000


def key_partitioner(count: int) -> Callable[[bytes], int]:
    """The partition Kafka's default partitioner (murmur2, as aiokafka's and the Java
    client's) picks for a key among ``count`` partitions, for harnesses without a
    producer; the worker asks its producer (:func:`partitioner`)."""
    from aiokafka.partitioner import DefaultPartitioner

    choose = DefaultPartitioner()
    partitions = list(range(count))

    def partition_of(key: bytes) -> int:
        return int(choose(key, partitions, partitions))

    return partition_of


async def partitioner(producer: Any, topic: str) -> Callable[[bytes], int]:
    """The partition the producer's own partitioner picks for a key of ``topic`` (as
    ``producer.send`` would), computed once per key."""
    await producer.client._wait_on_metadata(topic)
    count = len(producer.client.cluster.partitions_for_topic(topic) or ())
    cache = _PARTITIONS.setdefault((topic, count), {})
    if len(cache) > _MAX_CACHED:
        cache.clear()

    def partition_of(key: bytes) -> int:
        found = cache.get(key)
        if found is None:  # the partitioner hashes in pure Python: once per key
            found = cache[key] = int(producer._partition(topic, None, None, None, key, None))
        return found

    return partition_of


async def send_keyed(
    producer: Any, topic: str, records: Iterable[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Send ``(key, value)`` records to the partition the producer's own partitioner picks
    for each key (as ``producer.send`` would), in batches."""
    partition_of = await partitioner(producer, topic)
    return await send_batched(producer, topic, ((partition_of(k), k, v) for k, v in records))
