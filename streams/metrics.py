"""Every Prometheus metric of CRM Pulse, declared once, with bounded labels.

Labels are rule ids, KPI ids, entity kinds, ops, sources, reasons, scope kinds: never a
customer, deal or owner id. Each metric takes the ``registry`` so tests use their own.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.rule_errors = Counter(
            "crm_pulse_rule_errors", "Rule evaluations that raised (isolated).", ["rule"],
            registry=r,
        )  # fmt: skip
        self.rule_reloads = Counter(
            "crm_pulse_rule_reloads", "Rule set swaps.", ["result"], registry=r
        )
        self.rules_live = Gauge("crm_pulse_rules_live", "Enabled rules in the live set.", registry=r)
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
