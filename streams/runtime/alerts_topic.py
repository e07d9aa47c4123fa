"""A live tail of ``crm.alerts`` (Kafka I/O): one formatted line per wanted alert
(:mod:`streams.alerting.view`), for ``crm-pulse alerts tail`` and the demo."""

from __future__ import annotations

import asyncio

from streams.alerting.view import format_alert, wanted
from streams.runtime.clients import new_consumer
from streams.settings import Settings


async def tail_alerts(
    settings: Settings, topic: str, stop: asyncio.Event, colour: bool, *,
    from_beginning: bool = True, status: str | None = None, owner: str | None = None,
    rule: str | None = None,
) -> int:  # fmt: skip
    consumer = new_consumer(
        settings, "alerts-tail", topic, group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    raw = record.value or b""
                    if wanted(raw, status, owner, rule):
                        seen += 1
                        print(format_alert(raw, colour), flush=True)
    finally:
        await consumer.stop()
    return seen
