"""``kpi_anomaly``: a KPI departs from its own pattern (online detector).

Pure: ``evaluate_kpi(rule, point, state, now)`` feeds the series'
:class:`~streams.anomaly.AnomalyDetector` (kept in the state) one point. The detector opens
and closes episodes itself (fires at ``threshold``, never during warm-up; hysteresis and
``cooldown_points``), so one burst or one level shift is one alert; the rule holds while an
episode is open, and opens no new episode during ``cooldown`` (time) after one ended. The
evidence says what was expected (value and band), the deviation, and which component fired
(spike, dip, level_shift_up/down, flatline; ``day_*`` when the day totals of an hourly KPI
fired). A timer re-check (same point again) never
re-learns. The state of the previous EWMA detector is read as a level and a scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from streams.anomaly import AnomalyDetector
from streams.rules.change import Outcome
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import KpiAnomalyRule


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def detector_config(rule: KpiAnomalyRule) -> dict[str, Any]:
    """The detector's settings from the rule's knobs."""
    return {
        "threshold": rule.threshold, "warmup": rule.warmup, "half_life": rule.half_life,
        "direction": rule.direction, "season": rule.season, "count": rule.count,
        "shift_k": rule.shift_k, "flatline": rule.flatline, "cooldown": rule.cooldown_points,
        "clear": rule.clear_points,
    }  # fmt: skip


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
    detector = AnomalyDetector.from_dict(state.get("det"), **detector_config(rule))
    offset = point.computed_at.astimezone(_zone(rule.timezone)).utcoffset()
    detector.utc_offset_s = offset.total_seconds() if offset is not None else 0.0
    score = detector.update(ts, point.value)
    evidence: dict[str, Any] = {
        "kpi": point.kpi, "scope": point.scope, "window": point.window, "value": point.value,
        "score": round(score, 12), "threshold": rule.threshold, "points_learnt": detector.n,
        **detector.evidence(),
    }  # fmt: skip
    holds = detector.active
    if detector.suppressed:
        evidence["cooldown_points_left"] = detector.cool
    quiet_until = state.get("quiet_until")
    if holds and not holds_before and quiet_until is not None and ts < float(quiet_until):
        holds = False  # cooldown (time) after the previous episode
        detector.active = False
        evidence["cooldown_until"] = quiet_until
    new_state: dict[str, Any] = {"det": detector.to_dict(), "seen": ts, "holds": holds}
    if holds_before and not holds:
        new_state["quiet_until"] = ts + rule.cooldown.total_seconds()
    elif quiet_until is not None:
        new_state["quiet_until"] = quiet_until
    return Outcome(holds=holds, evidence=evidence, state=new_state)
