"""``kpi_threshold``: a KPI leaves the band [``min``, ``max``], optionally for ``sustain``.

Pure: ``evaluate_kpi(rule, point, state, now)``. Untrusted values (flagged ``untrusted`` or
trust below ``min_trust``) are skipped unless ``include_untrusted``; a null value is skipped.
State: ``{"out_since": epoch s | None, "due": epoch s}`` (the timer re-checks a sustain).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streams.rules.change import Outcome
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import KpiThresholdRule
from streams.rules.types.timing import iso


def outside(rule: KpiThresholdRule, value: float) -> bool:
    return (rule.min is not None and value < rule.min) or (
        rule.max is not None and value > rule.max
    )


def evaluate_kpi(
    rule: KpiThresholdRule, point: KpiPoint, state: Mapping[str, Any], now: datetime
) -> Outcome:
    if point.value is None:
        return Outcome(holds=bool(state.get("holds")), evidence={}, state=state, skip="no_value")
    if not rule.include_untrusted and not point.is_trusted(rule.min_trust):
        return Outcome(holds=bool(state.get("holds")), evidence={}, state=state, skip="untrusted")
    evidence: dict[str, Any] = {
        "kpi": point.kpi, "scope": point.scope, "window": point.window, "value": point.value,
        "min": rule.min, "max": rule.max, "trust": point.trust,
    }  # fmt: skip
    if not outside(rule, point.value):
        return Outcome(holds=False, evidence=evidence, state={"out_since": None, "holds": False})
    since = state.get("out_since")
    if since is None:
        since = point.computed_at.timestamp()
    due = float(since) + rule.sustain.total_seconds()
    holds = now.timestamp() >= due
    evidence.update({"out_since": iso(float(since)), "sustain_s": rule.sustain.total_seconds()})
    state_out = {"out_since": since, "due": due, "holds": holds}
    return Outcome(holds=holds, evidence=evidence, state=state_out)
