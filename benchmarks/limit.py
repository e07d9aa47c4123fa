"""The limit: the least any consumer must do, a bare aiokafka ``getmany`` + orjson decode
loop over the input topic. No framework, no state, no output."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.kafka_io import end_offsets
from benchmarks.report import run_figure


async def measure_limit(
    bootstrap: str, topic: str, expected: int, budget_s: float
) -> dict[str, Any]:
    """Events/s from the first record received to the last (or to the end of the budget)."""
    parts = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    count = decoded = 0
    first: float | None = None
    last = time.perf_counter()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started = time.perf_counter()
        while count < expected:
            asked = time.perf_counter()
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batches.values():
                if first is None:
                    first = asked  # the fetch of the first records counts too
                for record in records:
                    try:
                        orjson.loads(record.value)
                        decoded += 1
                    except orjson.JSONDecodeError:
                        pass
                count += len(records)
            last = time.perf_counter()
            if last - (first if first is not None else started) > budget_s:
                break
    finally:
        await consumer.stop()
    return run_figure(
        expected=expected,
        processed=count,
        seconds=last - (first or last),
        budget_s=budget_s,
        decoded=decoded,
    )
