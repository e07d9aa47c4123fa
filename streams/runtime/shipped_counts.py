"""What is seen of the shipper from outside: a result's counters when it is queued, the
alert latencies once its shipment is written, and its progress (for ``/health``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from streams.judge.result import BatchResult
from streams.metrics import Metrics


def count_result(m: Metrics, result: BatchResult, *, owner_label: bool = False) -> None:
    """Counters of one result. ``owner_label``: also count alerts per owner (opt-in: owner
    ids are unbounded in general)."""
    stats = result.stats
    for (entity, op, source), n in stats.events.items():
        m.events.labels(entity=entity, op=op, source=source).inc(n)
    for reason, n in stats.invalid.items():
        m.invalid_events.labels(reason=reason).inc(n)
    for rule, n in stats.rule_errors.items():
        m.rule_errors.labels(rule=rule).inc(n)
    for stage, n in stats.processing_errors.items():
        m.processing_errors.labels(stage=stage).inc(n)
    if stats.duplicates:
        m.duplicate_events.inc(stats.duplicates)
    if stats.replays:
        m.replayed_events.inc(stats.replays)
    if stats.out_of_order:
        m.out_of_order_events.inc(stats.out_of_order)
    if result.alerts:  # one label lookup per kind of alert, not per alert
        kinds = Counter(
            (alert.rule_id, alert.severity.value, alert.status.value) for alert in result.alerts
        )
        for (rule, severity, status), n in kinds.items():
            m.alerts.labels(rule=rule, severity=severity, status=status).inc(n)
    if owner_label:
        for alert in result.alerts:
            if alert.owner_id:
                m.alerts_by_owner.labels(owner=alert.owner_id).inc()


def observe_latency(m: Metrics, result: BatchResult, latency: float) -> None:
    """Received -> alert acknowledged, and event time -> alert acknowledged."""
    now = datetime.now(UTC)
    for alert in result.alerts:
        m.processing_latency.observe(latency)
        if alert.occurred_at is not None:
            m.event_to_alert_latency.observe(max(0.0, (now - alert.occurred_at).total_seconds()))


class ShipProgress:
    """The shipper's progress seen from outside: how long it has had work pending without
    completing a shipment (a broker that does not acknowledge)."""

    def __init__(self) -> None:
        self._shipped = -1.0
        self._since = 0.0

    def observe(self, shipped: float, pending: bool, now: float) -> float | None:
        """``shipped``: shipments done so far; ``None`` while the shipper is idle."""
        if shipped != self._shipped or not pending:
            self._shipped, self._since = shipped, now
        return now - self._since if pending else None
