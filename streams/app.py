"""Builds the Faust app and the worker's container from :class:`Settings`, then registers
the agents and web views onto them (``register(app, runtime)`` in each module).

Nothing imports this module but the command line: agents get what they share from the
typed container (:class:`streams.runtime.container.Runtime`).
"""

from __future__ import annotations

import logging

from streams import web, web_alerts
from streams.agents import (
    alerting,
    frequency,
    housekeeping,
    ingest,
    kpis,
    notify,
    rules_feed,
    sources,
)
from streams.api import rules as rules_api
from streams.metrics import Metrics, faust_monitor
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from streams.runtime.container import Runtime, build_runtime
from streams.settings import Settings
from streams.transport import PulseApp

log = logging.getLogger(__name__)

#: What registers onto the app and the container, in this order.
REGISTRATIONS = (
    alerting.register,
    frequency.register,
    ingest.register,
    rules_feed.register,
    housekeeping.register,
    kpis.register,
    notify.register,
    web.register,
    rules_api.register,
    web_alerts.register,
    sources.register,
)


def initial_rules(settings: Settings) -> RuleSet:
    """Rules from the rules folder, used until the rules topic says otherwise."""
    if not settings.rules_dir.exists():
        return RuleSet()
    result = load_paths([settings.rules_dir])
    for problem in result.problems:
        log.error("rule refused: %s", problem)
    return RuleSet.build(loaded.compiled for loaded in result.rules)


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> Runtime:
    """A Faust app with the topics, tables, agents and web views of CRM Pulse, and the
    container that holds them."""
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
        # a partition's next batch waits for its previous one to be sent (one request in
        # flight per broker): 256 KiB batches ship a batch's states in 1 round trip, not 8
        producer_max_batch_size=max(16_384, settings.max_message_bytes // 4),
        broker_max_poll_records=settings.batch_max,
        stream_buffer_maxsize=max(4096, settings.batch_max * 2),
        table_cleanup_interval=3600.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    metrics = metrics or Metrics()
    if settings.faust_metrics_enabled:
        app.monitor = faust_monitor(metrics.registry)
    runtime = build_runtime(settings, app, metrics)
    runtime.swap_rules(initial_rules(settings))
    for register in REGISTRATIONS:
        register(app, runtime)
    runtime.check_wired()  # a missing part is an error now, not a silent gap later
    return runtime
