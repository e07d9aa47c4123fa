"""Reading the latest KPI snapshots from the compacted KPI topic (Kafka I/O) for
``crm-pulse kpis show --topic``; filtering and ordering them is :mod:`streams.kpis.show`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from streams.kpis.show import select
from streams.runtime.clients import new_consumer
from streams.settings import Settings


async def from_topic(
    settings: Settings, topic: str, filters: Mapping[str, str], settle: float = 1.5
) -> list[dict[str, Any]]:
    """The latest snapshot per key on the (compacted) KPI topic."""
    consumer = new_consumer(
        settings, "kpis-show", topic, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    latest: dict[bytes, dict[str, Any]] = {}
    quiet = time.monotonic()
    try:
        while time.monotonic() - quiet < settle:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    quiet = time.monotonic()
                    if record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = json.loads(record.value)
    finally:
        await consumer.stop()
    return select(latest.values(), filters)
