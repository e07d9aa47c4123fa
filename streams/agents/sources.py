"""CRM sources on the worker: one agent per topic source, the HTTP sources' registry.

:func:`register_sources` is the one entry point (called once by ``create_app``): it reads
the sources file (``CRM_PULSE_SOURCES_FILE``; a bad file stops the start with every
problem listed), builds each enabled source's translator and

* for a topic source (``debezium``, ``salesforce_cdc``, a ``mapping`` with a topic
  transport): an agent ``source-<id>`` on its topics (the worker's consumer group). Each
  batch is translated (pure) and handed to the :class:`SourceShipper`, which writes the
  change events to ``crm.events``, the refusals to ``crm.events.dlq`` and the gap alerts
  to ``crm.alerts``, waits for the broker's acknowledgements and only then acks the input,
  so its offsets are committed after the writes;
* for an HTTP source (``hubspot_webhook``, a ``mapping`` with an HTTP transport): an entry
  of ``POST /sources/<id>`` (:mod:`streams.api.sources`).

Counted on ``crm_pulse_source_records_total{source, result}`` and
``crm_pulse_source_gaps_total{source, change_type}``. Alerts about a record get the link
to it from the mappings' ``record_url`` (``RecordLinks``, applied by the shipper).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import SecretStr

from streams.alerting.source_alerts import RecordLinks
from streams.contracts.alerts import AlertEvent
from streams.decode import DecodeLimits
from streams.runtime.container import RAW, RAW_SER, Runtime
from streams.runtime.source_shipper import (
    Destinations,
    Origin,
    OutRecord,
    SourceShipper,
    alert_records,
    translation_records,
)
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
    where: Destinations
    shipper: SourceShipper
    http: dict[str, HttpSource] = field(default_factory=dict)
    topic_sources: dict[str, Any] = field(default_factory=dict)


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


def gated(pulse: Runtime, alerts: list[AlertEvent]) -> list[AlertEvent]:
    """Gap alerts through the silences and the notification budget, counted."""
    if not alerts:
        return alerts
    out = pulse.alerting.gate(alerts, pulse.engine.clock(), pulse.metrics)
    for alert in out:
        pulse.metrics.alerts.labels(
            rule=alert.rule_id, severity=alert.severity.value, status=alert.status.value
        ).inc()
    return out


def translate_input(
    pulse: Runtime,
    rt: SourcesRuntime,
    translator: Translator,
    raw: bytes | None,
    origin: Origin,
    translation: Translation | None = None,
) -> list[OutRecord]:
    """One input through its source's translator (unless ``translation`` is given): the
    records to write, counted."""
    now = pulse.engine.clock()
    if translation is None:
        translation = translator.translate(raw, received_at=now)
    count_translation(pulse, translator.source_id, translation)
    records, alerts = translation_records(
        translation, origin, translator.source_id, rt.where, now, rt.links
    )
    if alerts:
        records += alert_records(gated(pulse, alerts), rt.where)
    return records


def translate_messages(
    pulse: Runtime, rt: SourcesRuntime, translator: Translator, messages: Sequence[Any]
) -> list[OutRecord]:
    out: list[OutRecord] = []
    for m in messages:
        origin = Origin(m.topic, m.partition, m.offset, m.key)
        try:
            out.extend(translate_input(pulse, rt, translator, m.value, origin))
        except Exception as exc:  # building its output failed: this input alone is refused
            log.warning("source %s: %s@%s: output of one input failed (%s); dead-lettered",
                        translator.source_id, m.topic, m.offset, type(exc).__name__)  # fmt: skip
            failed = refused(m.value, SourceRefusalReason.TRANSLATOR_ERROR,
                             f"output: {type(exc).__name__}: {str(exc)[:300]}")  # fmt: skip
            out.extend(translate_input(pulse, rt, translator, m.value, origin, failed))
    return out


def _register_topic_source(
    pulse: Runtime, rt: SourcesRuntime, source: Any, translator: Translator
) -> None:
    settings = pulse.settings
    app = pulse.app
    names = list(source.transport.topics)
    channel = app.topic(*names, **RAW, **RAW_SER)
    within = settings.batch_within_ms / 1000.0

    async def take(messages: list[Any], ack: Any) -> None:
        started = time.perf_counter()
        records = translate_messages(pulse, rt, translator, messages)
        pulse.metrics.source_translate_seconds.labels(source=source.id).observe(
            time.perf_counter() - started
        )
        await rt.shipper.put(records, ack)

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


def build_runtime(pulse: Runtime, config: SourcesConfig) -> SourcesRuntime:
    settings = pulse.settings

    async def send(record: OutRecord) -> Any:
        return await pulse.app.producer.send(
            record.topic, record.key, record.value, None, None, record.headers
        )

    async def crash(exc: BaseException) -> None:
        await pulse.app.crash(exc)

    where = Destinations(
        settings.events_topic, settings.dlq_topic, settings.alerts_topic,
        settings.max_message_bytes,
    )  # fmt: skip
    links = RecordLinks.build(config.sources)
    return SourcesRuntime(config, links, where, SourceShipper(send, crash))


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
    rt = build_runtime(pulse, config)
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

    sources_api.register(pulse, rt, partial(translate_input, pulse, rt))
    return rt


def register(app: Any, runtime: Runtime) -> None:
    """Wire the configured CRM sources (none unless ``sources_file`` is set)."""
    register_sources(runtime)
