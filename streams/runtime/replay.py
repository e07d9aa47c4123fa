"""Sending the synthesized events of a dataset replay (:mod:`streams.kpis.replay`) to Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from streams.kpis.replay import ReplayEvent
from streams.runtime.clients import new_producer
from streams.settings import Settings


async def produce(
    events: Sequence[ReplayEvent],
    settings: Settings,
    topic: str,
    *,
    speed: float | None = None,
    progress: Callable[[int, datetime | None, bool], None] | None = None,
) -> tuple[int, float]:
    """Send ``events`` in order; ``speed`` = event-time seconds per wall second (None: max).

    Returns (events sent, seconds taken, acks included).
    """
    producer = new_producer(settings, "replay", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.monotonic()
    sent = 0
    try:
        first = events[0].at if events else None
        for event in events:
            if speed and first is not None:
                due = (event.at - first).total_seconds() / speed
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
            await producer.send(topic, key=event.key, value=event.encoded())
            sent += 1
            if progress is not None:
                progress(sent, event.at, False)
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    if progress is not None:
        progress(sent, events[-1].at if events else None, True)
    return sent, elapsed
