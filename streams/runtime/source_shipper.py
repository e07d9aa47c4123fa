"""From a source's translation to Kafka records, acknowledged before the input is.

:func:`translation_records` (pure) turns what a translator made of one input into the
records to write, in order: the change events to ``crm.events`` (key = ``entity_id``), the
refusals to ``crm.events.dlq`` (the original bytes, the original key, the ``DeadLetter``
header naming the source and its reason) and one data-quality alert per gap to
``crm.alerts``.

:class:`SourceShipper` writes them for the topic sources: one task, in input order; it
sends every record of the batches queued so far, waits for the broker's acknowledgements
of all of them, and only then acks the input records (so Faust commits their offsets). A
crash anywhere replays the unacknowledged input, whose translations have stable event ids
(deduplicated downstream). A batch the broker does not acknowledge stops the worker (as
the ingest shipper does): its input is replayed by the next one.

:func:`ship_now` is the HTTP sources' path: the records of one request, acknowledged
within a deadline or an exception (the endpoint answers 503 and the sender retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from streams.alerting.source_alerts import RecordLinks, gap_alert
from streams.contracts.alerts import AlertEvent
from streams.contracts.deadletter import DeadLetter
from streams.outputs import alert_value, dead_letter_record
from streams.produce import group_commit
from streams.sources.base import Translation

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record to write: ``kind`` is event, dead_letter or alert."""

    kind: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an input came from: a topic record, or an HTTP request (partition -1)."""

    topic: str
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    adapter: str = "kafka"


@dataclass(frozen=True, slots=True)
class Destinations:
    events_topic: str
    dlq_topic: str
    alerts_topic: str
    max_message_bytes: int


def translation_records(
    translation: Translation,
    origin: Origin,
    source_id: str,
    where: Destinations,
    now: datetime,
    links: RecordLinks | None = None,
) -> tuple[list[OutRecord], list[AlertEvent]]:
    """The records of one translated input (events, then dead letters) and its gap alerts
    (written after them with :func:`alert_records`, once the caller has gated them)."""
    out: list[OutRecord] = []
    for event in translation.events:
        value = event.model_dump_json(exclude_none=True).encode()
        out.append(OutRecord("event", where.events_topic, event.entity_id.encode(), value))
    for refusal in translation.refusals:
        dead = DeadLetter(
            reason=refusal.dead_letter_reason,
            detail=refusal.detail,
            topic=origin.topic,
            partition=origin.partition,
            offset=origin.offset,
            adapter=origin.adapter,
            failed_at=now,
            source=source_id,
            source_reason=refusal.reason.value,
        )
        dlq_value, headers, _ = dead_letter_record(
            origin.key, refusal.raw, dead, where.max_message_bytes
        )
        headers.append(("crm-pulse-source", source_id.encode()))
        out.append(OutRecord("dead_letter", where.dlq_topic, origin.key, dlq_value, headers))
    alerts = []
    for gap in translation.gaps:
        one = gap.entity_ids[0] if len(gap.entity_ids) == 1 else None
        entity = gap.entity.value if gap.entity else None
        found = links.for_record(entity, one) if links and one else []
        alerts.append(gap_alert(gap, now, found))
    return out, alerts


def alert_records(alerts: Sequence[AlertEvent], where: Destinations) -> list[OutRecord]:
    records = []
    for alert in alerts:
        value, _ = alert_value(alert, where.max_message_bytes)
        records.append(OutRecord("alert", where.alerts_topic, alert.alert_id.encode(), value))
    return records


#: Sends one record; returns the future of its acknowledgement.
Send = Callable[[OutRecord], Awaitable["asyncio.Future[object]"]]


async def send_all(send: Send, records: Sequence[OutRecord]) -> None:
    """Send in order, then wait for every acknowledgement (raises the first failure)."""
    futures = [await send(record) for record in records]
    if futures:
        await asyncio.gather(*futures)


async def ship_now(send: Send, records: Sequence[OutRecord], timeout: float) -> None:
    """Write ``records`` and wait for their acknowledgements, at most ``timeout`` seconds
    (``TimeoutError`` then; a record already handed to the producer may still arrive: the
    sender's retry repeats its stable event ids, deduplicated downstream)."""
    await asyncio.wait_for(send_all(send, records), timeout)


class SourceShipper:
    """Writes the topic sources' records in order, then acks their input (module doc)."""

    def __init__(
        self,
        send: Send,
        on_crash: Callable[[BaseException], Awaitable[None]],
        max_pending: int = 8,
    ) -> None:
        self.send = send
        self.on_crash = on_crash
        self.queue: asyncio.Queue[tuple[list[OutRecord], Callable[[], None]]] = asyncio.Queue(
            max_pending
        )
        self._task: asyncio.Task[None] | None = None

    async def put(self, records: list[OutRecord], ack: Callable[[], None]) -> None:
        """Queue one batch's records; ``ack`` acknowledges its input once they are written."""
        if self._task is None or self._task.done():
            if self._task is not None and self._task.done() and not self._task.cancelled():
                self._task.result()  # a crashed shipper crashes the caller: never silent
            self._task = asyncio.create_task(self._run(), name="crm-pulse-source-shipper")
        await self.queue.put((records, ack))

    async def _run(self) -> None:
        queue = self.queue
        while True:
            async with group_commit(queue) as taken:
                try:
                    await send_all(self.send, [r for records, _ in taken for r in records])
                    for _, ack in taken:
                        ack()
                except Exception as exc:
                    log.exception("a source's records were not acknowledged; the worker "
                                  "stops, its unacknowledged input is replayed")  # fmt: skip
                    await self.on_crash(exc)
                    raise
