"""``frequency``: ``count`` matching changes within a sliding ``window`` for one key.

Each firing is a point episode; the counted timestamps are then cleared, so the next alert
needs ``count`` new matching changes. State: ``{"ts": [epoch s, ...]}`` (at most ``count``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import NOT_HOLDING, Change, Outcome
from streams.rules.model import FrequencyRule
from streams.rules.types.timing import iso


def evaluate(
    rule: FrequencyRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    if change.timer:
        return NOT_HOLDING
    if rule.fields is not None and not change.changed.intersection(rule.fields):
        return NOT_HOLDING
    if guard is not None and not guard.holds(change):
        return NOT_HOLDING
    ts = change.event.occurred_at.timestamp()
    horizon = ts - rule.window.total_seconds()
    recent = [t for t in state.get("ts", ()) if horizon < float(t) <= ts]
    recent.append(ts)
    recent = sorted(recent)[-rule.count :]
    if len(recent) < rule.count:
        return Outcome(holds=False, evidence={}, state={"ts": recent})
    evidence = {
        "count": len(recent), "window_s": rule.window.total_seconds(),
        "first_at": iso(recent[0]), "last_at": iso(recent[-1]),
    }  # fmt: skip
    return Outcome(holds=True, evidence=evidence, point=True, state={"ts": []})
