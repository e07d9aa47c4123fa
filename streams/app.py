"""Builds the Faust app from :class:`Settings`; everything else only wires onto it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from streams.decode import DecodeLimits
from streams.engine import Engine
from streams.liveness import ShipProgress
from streams.metrics import Metrics, faust_monitor
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from streams.settings import Settings
from streams.transport import PulseApp

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
RAW_SER: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}


@dataclass
class Pulse:
    """The running pieces of one worker: app, topics, tables, engine, metrics."""

    settings: Settings
    app: Any
    events_topic: Any
    dlq_topic: Any
    alerts_topic: Any
    entity_table: Any
    engine: Engine
    metrics: Metrics
    extras: dict[str, Any] = field(default_factory=dict)
    #: a stop began (a signal or a crash): ``/health`` fails from then on
    stopping: bool = False
    #: the shipper's progress as ``/health`` sees it (a shipment not acknowledged for long)
    ship_progress: ShipProgress = field(default_factory=ShipProgress)

    @property
    def changelog_topic(self) -> str:
        """Name of the entity-state table's changelog topic."""
        return str(self.entity_table.changelog_topic.get_topic_name())

    def state_get(self, key: bytes) -> bytes | None:
        value = self.entity_table.data.get(key)
        return value if value is None or isinstance(value, bytes) else bytes(value)

    def swap_rules(self, rules: RuleSet) -> None:
        """Atomically replace the live rule set (the next batch uses it); then calls the
        ``rule_hooks`` in ``extras`` with the previous and the new set."""
        previous = self.engine.rules
        self.engine.rules = rules
        for hook in self.extras.get("rule_hooks", ()):
            hook(previous, rules)
        self.metrics.rule_reloads.labels(result="ok").inc()
        self.metrics.rules_live.set(sum(1 for c in rules.rules if c.rule.enabled))
        self.metrics.rules_version.clear()
        self.metrics.rules_version.labels(version=rules.version).set(1)
        self.metrics.init_rule_series((c.id, c.rule.severity.value) for c in rules.rules)
        log.info("rule set %s live: %d rule(s)", rules.version, len(rules))


def initial_rules(settings: Settings) -> RuleSet:
    """Rules from the rules folder, used until the rules topic says otherwise."""
    if not settings.rules_dir.exists():
        return RuleSet()
    result = load_paths([settings.rules_dir])
    for problem in result.problems:
        log.error("rule refused: %s", problem)
    return RuleSet.build(loaded.compiled for loaded in result.rules)


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> Pulse:
    """A Faust app with the topics, tables, agents and web views of CRM Pulse."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = PulseApp(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=settings.web_tables_enabled,
        web_router_enabled=settings.web_tables_enabled,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        producer_linger_ms=2,
        producer_request_timeout=settings.producer_request_timeout_s,
        producer_max_request_size=settings.max_message_bytes,
        broker_max_poll_records=settings.batch_max,
        stream_buffer_maxsize=max(4096, settings.batch_max * 2),
        table_cleanup_interval=3600.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
    )
    metrics = metrics or Metrics()
    if settings.faust_metrics_enabled:
        app.monitor = faust_monitor(metrics.registry)
    parts = settings.topic_partitions
    pulse = Pulse(
        settings=settings,
        app=app,
        events_topic=app.topic(settings.events_topic, partitions=parts, **RAW, **RAW_SER),
        dlq_topic=app.topic(settings.dlq_topic, partitions=parts, **RAW, **RAW_SER),
        alerts_topic=app.topic(settings.alerts_topic, partitions=parts, **RAW, **RAW_SER),
        entity_table=app.Table(
            "entity-state", partitions=parts, help="Latest state per CRM record.", **RAW
        ),
        engine=Engine(
            dedup_window=settings.dedup_window,
            limits=DecodeLimits.from_settings(settings),
            state_max_bytes=settings.state_max_bytes,
        ),
        metrics=metrics,
    )
    pulse.swap_rules(initial_rules(settings))

    from streams import web, web_alerts
    from streams.agents import alerting, frequency, housekeeping, ingest, kpis, rules_feed
    from streams.api import rules as rules_api

    alerting.register(pulse)
    frequency.register(pulse)
    ingest.register(pulse)
    rules_feed.register(pulse)
    housekeeping.register(pulse)
    kpis.register(pulse)
    from streams.agents import notify as notify_agent

    notify_agent.register(pulse)
    web.register(pulse)
    rules_api.register(pulse)
    web_alerts.register(pulse)
    from streams.agents.sources import register_sources  # CRM sources: its own block

    register_sources(pulse)
    return pulse
