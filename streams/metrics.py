"""Every Prometheus metric of CRM Pulse, declared once, with bounded labels.

Labels are rule ids, KPI ids, entity kinds, ops, sources, reasons, scope kinds: never a
customer, deal or owner id. Each metric takes the ``registry`` so tests use their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Alert statuses and reload results whose series exist (at 0) from the start, so dashboards
#: show 0 rather than "No data" and ``rate()`` sees the first increment.
ALERT_STATUSES = ("FIRING", "REMINDER", "ESCALATED", "RESOLVED")
RELOAD_RESULTS = ("ok", "error")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
EVENT_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "crm_pulse_events", "Valid change events processed.", ["entity", "op", "source"],
            registry=r,
        )  # fmt: skip
        self.invalid_events = Counter(
            "crm_pulse_invalid_events", "Events sent to the dead-letter topic.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.duplicate_events = Counter(
            "crm_pulse_duplicate_events", "Events ignored as already seen (same event_id).",
            registry=r,
        )  # fmt: skip
        self.replayed_events = Counter(
            "crm_pulse_replayed_events",
            "Input records skipped as already applied (at or before a record's last position).",
            registry=r,
        )
        self.out_of_order_events = Counter(
            "crm_pulse_out_of_order_events",
            "Changes older than their record's last applied change: not merged (policy).",
            registry=r,
        )
        self.evicted_records = Counter(
            "crm_pulse_evicted_records", "Records removed from the hot state by retention.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.batches = Counter("crm_pulse_batches", "Batches processed.", registry=r)
        self.batch_size = Histogram(
            "crm_pulse_batch_size", "Events per processed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "crm_pulse_alerts", "Alerts emitted.", ["rule", "severity", "status"], registry=r
        )
        self.active_alerts = Gauge(
            "crm_pulse_active_alerts", "Open alert episodes known to this worker.", ["rule"],
            registry=r,
        )  # fmt: skip
        self.processing_latency = Histogram(
            "crm_pulse_processing_latency_seconds",
            "Ingest (batch received) to alert produced.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.event_to_alert_latency = Histogram(
            "crm_pulse_event_to_alert_latency_seconds",
            "Event time (occurred_at) to alert produced.",
            buckets=EVENT_AGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.produced = Counter(
            "crm_pulse_produced", "Records sent by the shipper.", ["kind"], registry=r
        )
        for kind in ("alert", "dead_letter", "changelog"):
            self.produced.labels(kind=kind)
        self.ship_seconds = Histogram(
            "crm_pulse_ship_seconds", "One batch: alerts handed to the producer to broker acks.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rule_errors = Counter(
            "crm_pulse_rule_errors", "Rule evaluations that raised (isolated).", ["rule"],
            registry=r,
        )  # fmt: skip
        self.rule_reloads = Counter(
            "crm_pulse_rule_reloads", "Rule set swaps.", ["result"], registry=r
        )
        self.rules_live = Gauge(
            "crm_pulse_rules_live", "Enabled rules in the live set.", registry=r
        )
        self.rules_version = Gauge(
            "crm_pulse_rules_version_info", "Live rule set version (value 1).", ["version"],
            registry=r,
        )  # fmt: skip
        self.kpi_value = Gauge(
            "crm_pulse_kpi_value", "Latest KPI value.", ["kpi", "scope_kind", "scope_id", "window"],
            registry=r,
        )  # fmt: skip
        self.kpi_trust = Gauge(
            "crm_pulse_kpi_trust", "Trust in [0,1] of the latest KPI value.",
            ["kpi", "scope_kind", "scope_id", "window"], registry=r,
        )  # fmt: skip
        self.kpi_late_events = Counter(
            "crm_pulse_kpi_late_events", "Events too late for their KPI window (not applied).",
            ["scope_kind"], registry=r,
        )  # fmt: skip
        self.kpi_duplicate_events = Counter(
            "crm_pulse_kpi_duplicate_events", "KPI facts ignored as already applied.",
            ["scope_kind"], registry=r,
        )  # fmt: skip
        self.kpi_skipped = Counter(
            "crm_pulse_kpi_skipped", "KPI inputs a stage could not use (not applied, or a value "
            "counted as missing), by stage and reason; see docs/kpis.md.",
            ["stage", "reason"], registry=r,
        )  # fmt: skip
        self.kpi_snapshots = Counter(
            "crm_pulse_kpi_snapshots", "KPI snapshots published to the KPI topic.", registry=r
        )
        self.consumer_lag = Gauge(
            "crm_pulse_consumer_lag", "Records behind the end of the input topic.", ["partition"],
            registry=r,
        )  # fmt: skip
        self.tracked_records = Gauge(
            "crm_pulse_tracked_records", "Records held in the entity-state table.", registry=r
        )
        self.alerts_muted = Counter(
            "crm_pulse_alerts_muted", "Alerts recorded but not notified.", ["rule", "reason"],
            registry=r,
        )  # fmt: skip
        self.rule_skips = Counter(
            "crm_pulse_rule_skips", "Records a rule could not judge (no alert).",
            ["rule", "reason"], registry=r,
        )  # fmt: skip
        self.timers_pending = Gauge(
            "crm_pulse_timers_pending", "Records/KPI series with a scheduled deadline.", registry=r
        )
        self.timer_scans = Counter(
            "crm_pulse_timer_scans", "Timer scans that judged at least one due record.", registry=r
        )
        self.kpi_snapshots_read = Counter(
            "crm_pulse_kpi_snapshots_read", "KPI snapshots read by the KPI rules.", ["result"],
            registry=r,
        )  # fmt: skip
        self.silences_active = Gauge(
            "crm_pulse_silences_active", "Silences in force now.", registry=r
        )
        self.alerts_by_owner = Counter(
            "crm_pulse_alerts_by_owner",
            "Alerts emitted per owner; only filled when metrics_owner_label is on (opt-in).",
            ["owner"], registry=r,
        )  # fmt: skip
        self.housekeeping_seconds = Histogram(
            "crm_pulse_housekeeping_seconds", "Duration of one housekeeping pass (lag, gauges).",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.processing_errors = Counter(
            "crm_pulse_processing_errors",
            "Records whose processing raised, sent to the dead-letter topic (processing_error) "
            "or, for timer scans and KPI rules, isolated; by stage.",
            ["stage"], registry=r,
        )  # fmt: skip
        self.oversized_outputs = Counter(
            "crm_pulse_oversized_outputs",
            "Output records cut or split to fit the broker's message limit, by kind.",
            ["kind"], registry=r,
        )  # fmt: skip
        # Notifications: target is a configured name (alertmanager or a webhook name),
        # status an AlertStatus: both bounded by configuration, never an id.
        self.notifications = Counter(
            "crm_pulse_notifications",
            "Notification outcomes per target and alert status "
            "(result: sent, failed, retried, dead_lettered).",
            ["target", "status", "result"], registry=r,
        )  # fmt: skip
        self.notification_latency = Histogram(
            "crm_pulse_notification_latency_seconds",
            "From the alert's fired_at to a successful delivery, per target.",
            ["target"], buckets=EVENT_AGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.notify_open_episodes = Gauge(
            "crm_pulse_notify_open_episodes", "Open episodes re-posted to Alertmanager.",
            registry=r,
        )  # fmt: skip
        for result in RELOAD_RESULTS:
            self.rule_reloads.labels(result=result)

        # --- CRM sources (streams/agents/sources.py, streams/api/sources.py) --------------
        self.source_records = Counter(
            "crm_pulse_source_records",
            "Inputs of the CRM sources by result: event (a ChangeEvent written), refused "
            "(dead-lettered), skipped (a tombstone), gap (a change without values).",
            ["source", "result"], registry=r,
        )  # fmt: skip
        self.source_gaps = Counter(
            "crm_pulse_source_gaps",
            "Changes a source could not describe (Salesforce GAP_*): the records' state is "
            "unknown until a re-sync; each raises a source-gap alert.",
            ["source", "change_type"], registry=r,
        )  # fmt: skip
        self.source_requests = Counter(
            "crm_pulse_source_requests",
            "Requests to POST /sources/<id> by HTTP status.", ["source", "status"], registry=r,
        )  # fmt: skip
        self.source_translate_seconds = Histogram(
            "crm_pulse_source_translate_seconds", "Time to translate one batch of a source.",
            ["source"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def init_rule_series(self, rules: Iterable[tuple[str, str]]) -> None:
        """Create the per-rule series at 0 for each ``(rule id, severity)`` of a live set."""
        for rule, severity in rules:
            for status in ALERT_STATUSES:
                self.alerts.labels(rule=rule, severity=severity, status=status)
            self.rule_errors.labels(rule=rule)
            for reason in ("silenced", "held_back"):
                self.alerts_muted.labels(rule=rule, reason=reason)


def faust_monitor(registry: CollectorRegistry, prefix: str = "crm_pulse_faust") -> Any:
    """Faust's own Prometheus monitor, writing into our registry (served by our /metrics)."""
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    return PrometheusMonitor(metrics=FaustMetrics.create(registry, prefix))
