"""``kpi_anomaly``: a KPI departs from its own recent pattern (online detector).

Pure: ``evaluate_kpi(rule, point, state, now)`` feeds the series' :class:`AnomalyDetector`
(kept in the state) one point, fires while the score is >= ``threshold`` (never during
warm-up), resolves when a point scores below it, and opens no new episode during
``cooldown`` after the last one ended. A timer re-check (same point again) never re-learns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.anomaly import AnomalyDetector
from streams.rules.change import Outcome
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import KpiAnomalyRule


def evaluate_kpi(
    rule: KpiAnomalyRule, point: KpiPoint, state: Mapping[str, Any], now: datetime
) -> Outcome:
    holds_before = bool(state.get("holds"))
    if point.value is None:
        return Outcome(holds=holds_before, evidence={}, state=state, skip="no_value")
    if not rule.include_untrusted and not point.is_trusted(rule.min_trust):
        return Outcome(holds=holds_before, evidence={}, state=state, skip="untrusted")
    ts = point.computed_at.timestamp()
    if state.get("seen") is not None and ts <= float(state["seen"]):
        return Outcome(holds=holds_before, evidence={}, state=state)  # replay or re-check
    detector = AnomalyDetector.from_dict(
        state.get("det"), half_life=rule.half_life, warmup=rule.warmup, direction=rule.direction
    )
    mean, sd = detector.mean, detector.sd()
    score = detector.update(ts, point.value)
    evidence = {
        "kpi": point.kpi, "scope": point.scope, "window": point.window, "value": point.value,
        "score": round(score, 6), "expected": round(mean, 6), "sd": round(sd, 6),
        "threshold": rule.threshold, "points_learnt": detector.n,
    }  # fmt: skip
    holds = score >= rule.threshold
    quiet_until = state.get("quiet_until")
    if holds and not holds_before and quiet_until is not None and ts < float(quiet_until):
        holds = False  # cooldown after the previous episode
        evidence["cooldown_until"] = quiet_until
    new_state: dict[str, Any] = {"det": detector.to_dict(), "seen": ts, "holds": holds}
    if holds_before and not holds:
        new_state["quiet_until"] = ts + rule.cooldown.total_seconds()
    elif quiet_until is not None:
        new_state["quiet_until"] = quiet_until
    return Outcome(holds=holds, evidence=evidence, state=new_state)
