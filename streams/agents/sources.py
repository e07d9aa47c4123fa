"""CRM sources on the worker: one agent per topic source, the HTTP sources' registry.

:func:`register_sources` is the one entry point (called once by ``create_app``): it reads
the sources file (``CRM_PULSE_SOURCES_FILE``; a bad file stops the start with every
problem listed), builds each enabled source's translator and

* for a topic source (``debezium``, ``salesforce_cdc``, a ``mapping`` with a topic
  transport): an agent ``source-<id>`` on its topics (the worker's consumer group). Each
  batch is translated (pure) and handed to the worker's one :class:`Shipper`, which writes
  the change events to ``crm.events`` (in input order), the refusals to ``crm.events.dlq``
  and the gap alerts to ``crm.alerts`` (through the alert gate), waits for the broker's
  acknowledgements and only then acks the input, so its offsets are committed after the
  writes. A crash replays the unacknowledged input, whose events have stable ids;
* for an HTTP source (``hubspot_webhook``, a ``mapping`` with an HTTP transport): an entry
  of ``POST /sources/<id>`` (:mod:`streams.api.sources`), whose records go through the
  same shipper; the answer waits for its acknowledgement (:func:`ship_request`).

An input whose output records cannot be built (a defect on an odd payload) is
dead-lettered alone (reason ``processing_error``, source reason ``translator_error``), on
both paths. Counted on ``crm_pulse_source_records_total{source, result}`` and
``crm_pulse_source_gaps_total{source, change_type}``. Alerts about a record get the link
to it from the mappings' ``record_url`` (``RecordLinks``, applied by the shipper).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import SecretStr

from streams.alerting.source_alerts import RecordLinks, gap_alert
from streams.contracts.deadletter import DeadLetter
from streams.decode import DecodeLimits, RawRecord
from streams.judge.result import BatchResult
from streams.runtime.container import RAW, RAW_SER, Runtime
from streams.runtime.shipment import Record
from streams.sources import (
    SourceConfigError,
    SourcesConfig,
    Translation,
    Translator,
    build_translator,
)
from streams.sources import load_sources as read_sources
from streams.sources.base import SourceRefusalReason, refused

log = logging.getLogger(__name__)


@dataclass
class HttpSource:
    """An HTTP source: its config, translator and secret (read once at the start)."""

    config: Any
    translator: Translator
    secret: SecretStr


@dataclass
class SourcesRuntime:
    config: SourcesConfig
    links: RecordLinks
    http: dict[str, HttpSource] = field(default_factory=dict)
    topic_sources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an input came from: a topic record, or an HTTP request (partition -1)."""

    topic: str
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    adapter: str = "kafka"


@dataclass
class SourceOutput:
    """What inputs of a source hand to the shipper: their change events (records of their
    own, keyed by ``entity_id``, in input order), their refusals as dead letters (the
    original bytes and key, the source and its reason) and their gap alerts."""

    result: BatchResult = field(default_factory=BatchResult)
    events: list[Record] = field(default_factory=list)

    def extend(self, other: SourceOutput) -> None:
        self.events.extend(other.events)
        self.result.dead.extend(other.result.dead)
        self.result.alerts.extend(other.result.alerts)


def translation_output(
    translation: Translation,
    origin: Origin,
    source_id: str,
    events_topic: str,
    now: datetime,
    links: RecordLinks | None = None,
) -> SourceOutput:
    """The output of one translated input (pure)."""
    out = SourceOutput()
    for event in translation.events:
        value = event.model_dump_json(exclude_none=True).encode()
        out.events.append(Record(events_topic, event.entity_id.encode(), value))
    for refusal in translation.refusals:
        dead = DeadLetter(
            reason=refusal.dead_letter_reason, detail=refusal.detail, topic=origin.topic,
            partition=origin.partition, offset=origin.offset, adapter=origin.adapter,
            failed_at=now, source=source_id, source_reason=refusal.reason.value,
        )  # fmt: skip
        raw = RawRecord(origin.topic, origin.partition, origin.offset, origin.key, refusal.raw)
        out.result.dead.append((raw, dead))
    for gap in translation.gaps:
        one = gap.entity_ids[0] if len(gap.entity_ids) == 1 else None
        entity = gap.entity.value if gap.entity else None
        found = links.for_record(entity, one) if links and one else []
        out.result.alerts.append(gap_alert(gap, now, found))
    return out


def count_translation(pulse: Runtime, source_id: str, translation: Translation) -> None:
    m = pulse.metrics
    records = m.source_records
    if translation.events:
        records.labels(source=source_id, result="event").inc(len(translation.events))
    if translation.refusals:
        records.labels(source=source_id, result="refused").inc(len(translation.refusals))
    if translation.skipped:
        records.labels(source=source_id, result="skipped").inc(translation.skipped)
    for gap in translation.gaps:
        records.labels(source=source_id, result="gap").inc()
        m.source_gaps.labels(source=source_id, change_type=gap.change_type).inc()


def translate_input(
    pulse: Runtime,
    rt: SourcesRuntime,
    translator: Translator,
    raw: bytes | None,
    origin: Origin,
    translation: Translation | None = None,
) -> tuple[Translation, SourceOutput]:
    """One input through its source's translator (unless ``translation`` is given) and into
    its output, counted. When the output cannot be built, the input alone is refused
    (``translator_error``): the translation returned is then that refusal."""
    now = pulse.engine.clock()
    source_id = translator.source_id
    if translation is None:
        translation = translator.translate(raw, received_at=now)
    events_topic = pulse.settings.events_topic
    try:
        out = translation_output(translation, origin, source_id, events_topic, now, rt.links)
    except Exception as exc:  # building its output failed: this input alone is refused
        log.warning("source %s: %s@%s: output of one input failed (%s); dead-lettered",
                    source_id, origin.topic, origin.offset, type(exc).__name__)  # fmt: skip
        translation = refused(raw, SourceRefusalReason.TRANSLATOR_ERROR,
                              f"output: {type(exc).__name__}: {str(exc)[:300]}")  # fmt: skip
        out = translation_output(translation, origin, source_id, events_topic, now)
    count_translation(pulse, source_id, translation)
    return translation, out


def translate_messages(
    pulse: Runtime, rt: SourcesRuntime, translator: Translator, messages: Sequence[Any]
) -> SourceOutput:
    out = SourceOutput()
    for m in messages:
        origin = Origin(m.topic, m.partition, m.offset, m.key)
        out.extend(translate_input(pulse, rt, translator, m.value, origin)[1])
    return out


def translate_request(
    pulse: Runtime, rt: SourcesRuntime, translator: Translator, body: bytes
) -> tuple[Translation, SourceOutput]:
    """The body of one ``POST /sources/<id>``: its translation and output."""
    origin = Origin(f"POST /sources/{translator.source_id}", adapter="http")
    return translate_input(pulse, rt, translator, body, origin)


async def ship_request(pulse: Runtime, out: SourceOutput) -> None:
    """Hand one request's output to the shipper and wait until the broker acknowledged it
    (the caller bounds the wait: a request left waiting is still shipped, in order; a retry
    repeats its stable event ids)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def acknowledged() -> None:
        if not done.done():  # the request may have stopped waiting (timed out)
            done.set_result(None)

    await pulse.shipper.put(out.result, acknowledged, time.monotonic(), records=out.events)
    await done


def _register_topic_source(
    pulse: Runtime, rt: SourcesRuntime, source: Any, translator: Translator
) -> None:
    settings = pulse.settings
    app = pulse.app
    names = list(source.transport.topics)
    channel = app.topic(*names, **RAW, **RAW_SER)
    within = settings.batch_within_ms / 1000.0

    async def take(messages: list[Any], ack: Any) -> None:
        received = time.monotonic()
        started = time.perf_counter()
        out = translate_messages(pulse, rt, translator, messages)
        pulse.metrics.source_translate_seconds.labels(source=source.id).observe(
            time.perf_counter() - started
        )
        # written (events in input order), acknowledged, then the input acked
        await pulse.shipper.put(out.result, ack, received, records=out.events)

    async def on_records(messages: list[Any]) -> None:
        for start in range(0, len(messages), settings.batch_max):
            chunk = messages[start : start + settings.batch_max]
            await take(chunk, partial(app.consumer.ack_many, chunk))

    if settings.batch_consumer:  # one list per fetch, as for crm.events (streams.transport)
        for name in names:
            app.batch_handlers[name] = on_records

    # Subscribes the source's topics (acks on): idle with the batch consumer on.
    @app.agent(channel, name=f"source-{source.id}")
    async def source_agent(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_max, within=within):
            await take([e.message for e in events], partial(_ack_events, events))

    rt.topic_sources[source.id] = source_agent


def _ack_events(events: Sequence[Any]) -> None:
    for event in events:
        event.ack()


def register_sources(pulse: Runtime) -> SourcesRuntime | None:
    """Wire the configured CRM sources onto the worker (module docstring); ``None`` when
    ``sources_file`` is not set."""
    settings = pulse.settings
    if settings.sources_file is None:
        return None
    try:
        config = read_sources(settings.sources_file)
        secrets = {s.id: s.transport.secret.read() for s in config.sources
                   if s.enabled and s.transport.kind == "http"}  # fmt: skip
    except SourceConfigError as exc:  # bad settings at start: exit 1 with every problem
        for problem in exc.problems:
            log.critical("sources file: %s", problem)
        raise SystemExit(1) from None
    rt = SourcesRuntime(config, RecordLinks.build(config.sources))
    pulse.shipper.links = rt.links  # every alert about a record gets its CRM page
    limits = DecodeLimits.from_settings(settings)
    for source in config.sources:
        if not source.enabled:
            log.info("source %s is disabled", source.id)
            continue
        translator = build_translator(source, limits)
        if source.transport.kind == "topic":
            _register_topic_source(pulse, rt, source, translator)
        else:
            rt.http[source.id] = HttpSource(source, translator, secrets[source.id])
        log.info("source %s (%s) on %s", source.id, source.type,
                 ",".join(source.transport.topics) if source.transport.kind == "topic"
                 else f"POST /sources/{source.id}")  # fmt: skip
    from streams.api import sources as sources_api

    sources_api.register(
        pulse, rt, partial(translate_request, pulse, rt), partial(ship_request, pulse)
    )
    return rt


def register(app: Any, runtime: Runtime) -> None:
    """Wire the configured CRM sources (none unless ``sources_file`` is set)."""
    register_sources(runtime)
