"""Writing and reading the compacted silences topic (Kafka I/O) for
``crm-pulse silences add|list|remove``; what the records mean is
:class:`streams.alerting.silences.SilenceBook`."""

from __future__ import annotations

import time

from streams.alerting.silences import SilenceBook
from streams.contracts.silences import Silence
from streams.runtime.clients import new_consumer, new_producer
from streams.settings import Settings

#: Client id suffix of this module's Kafka clients.
ROLE = "silences"


async def send_silence(settings: Settings, key: str, value: bytes | None) -> None:
    """Write one silence record (``value`` None: a tombstone that lifts it)."""
    producer = new_producer(settings, ROLE)
    await producer.start()
    try:
        await producer.send_and_wait(settings.silences_topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


async def read_silences(settings: Settings, settle: float = 1.0) -> list[Silence]:
    """Every silence on the topic (read from the start until it is quiet for ``settle`` s)."""
    book = SilenceBook()
    consumer = new_consumer(
        settings, ROLE, settings.silences_topic, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < settle:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                quiet_since = time.monotonic()
                for record in records:
                    book.apply_record(record.key, record.value)
    finally:
        await consumer.stop()
    return book.all()
