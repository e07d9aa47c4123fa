"""Small aiokafka helpers for integration tests: produce, consume until, read all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


async def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    n = 0
    try:
        for key, value in messages:
            await producer.send(topic, key=key, value=value)
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def event_bytes(**event: Any) -> tuple[bytes, bytes]:
    """A ``(key, value)`` pair for a ChangeEvent given as keyword arguments."""
    return str(event["entity_id"]).encode(), orjson.dumps(event)


async def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[Sequence[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``done(records)`` or the timeout; returns all read."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if done(records):
                break
    finally:
        await consumer.stop()
    return records


async def read_all(
    bootstrap: str, topic: str, settle: float = 1.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on ``topic`` now (stops after ``settle`` seconds without new records)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < settle:
            batches = await consumer.getmany(timeout_ms=200)
            got = [r for batch in batches.values() for r in batch]
            if got:
                records.extend(got)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return records


def values(records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.value]


async def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()
