"""``inactivity``: no qualifying change of a record for a duration (per-record timer).

The same pure function judges a record on a new change and when its timer comes due
(``change.timer``): the rule state keeps the start of the idle period (``last``) and the
deadline (``due``, epoch s) that the worker's timer index schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from streams.contracts.events import Op
from streams.rules.cel_expr import CelExpression
from streams.rules.change import Change, Outcome
from streams.rules.model import InactivityRule
from streams.rules.types.timing import deadline, iso

DISARMED = Outcome(holds=False, evidence={}, state={})


def _is_activity(rule: InactivityRule, change: Change) -> bool:
    if change.timer or not change.changed:
        return False
    if rule.activity_fields is None:
        return True
    return bool(change.changed.intersection(rule.activity_fields))


def evaluate(
    rule: InactivityRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    if change.event.op is Op.DELETE:
        return DISARMED
    if guard is not None and not guard.holds(change):
        return DISARMED
    if state.get("done"):
        return Outcome(holds=False, evidence={"reason": "activity seen"}, state=state)
    occurred = change.event.epoch
    last = state.get("last")
    if rule.anchor == "created":
        if last is not None and _is_activity(rule, change) and not change.is_create:
            return Outcome(holds=False, evidence={"reason": "activity seen"}, state={"done": True})
        if last is None:
            last = occurred
    elif last is None or _is_activity(rule, change):
        last = occurred
    due = deadline(
        datetime.fromtimestamp(float(last), tz=UTC), rule.after, rule.business_time, change.tz
    ).timestamp()
    idle_s = max(0.0, change.now.timestamp() - float(last))
    evidence = {
        "idle_since": iso(float(last)), "due_at": iso(due),
        "after_s": rule.after.total_seconds(), "idle_s": round(idle_s, 3),
        "idle_days": round(idle_s / 86400, 2),
    }  # fmt: skip
    holds = change.now.timestamp() >= due
    return Outcome(holds=holds, evidence=evidence, state={"last": last, "due": due})
