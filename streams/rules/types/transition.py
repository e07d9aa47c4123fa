"""``transition``: a field moves in a given way between the old and the new record.

Supported movements: ``changed``; ``increased``/``decreased``/``changed_by`` more than
``pct`` % or ``abs`` units (a relative change needs a non-zero old value: a change from
0, e.g. a placeholder amount filled in, is never a ``pct`` jump, only an ``abs`` one);
``backwards`` in an ordered list (pipeline stages);
``pushed_later`` for dates, with a per-record count of pushes (fires from ``min_pushes``).
Every firing is a point-in-time episode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import NOT_HOLDING, Change, Outcome
from streams.rules.model import TransitionRule
from streams.rules.types.values import as_date, as_number, is_blank


def _exceeds(rule: TransitionRule, old: float, new: float, direction: int) -> dict[str, Any] | None:
    delta = new - old
    if not math.isfinite(delta):  # e.g. -1e308 -> 1e308: no meaningful size of change
        return None
    if (direction > 0 and delta <= 0) or (direction < 0 and delta >= 0) or delta == 0:
        return None
    pct = abs(delta) / abs(old) * 100.0 if old != 0 else None
    if pct is not None and not math.isfinite(pct):
        pct = None
    over_pct = rule.pct is not None and pct is not None and pct > rule.pct
    over_abs = rule.abs is not None and abs(delta) > rule.abs
    if not (over_pct or over_abs):
        return None
    return {"delta": delta, "pct": round(pct, 2) if pct is not None else None}


def evaluate(
    rule: TransitionRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    if change.before is None or rule.field not in change.changed:
        return NOT_HOLDING
    old = change.before.get(rule.field)
    new = change.after.get(rule.field)
    if old == new:
        return NOT_HOLDING
    evidence: dict[str, Any] = {"field": rule.field, "old": old, "new": new}
    new_state: Mapping[str, Any] | None = None
    kind = rule.change
    if kind == "changed":
        pass
    elif kind in ("increased", "decreased", "changed_by"):
        old_n, new_n = as_number(old), as_number(new)
        if old_n is None or new_n is None:
            return NOT_HOLDING
        direction = {"increased": 1, "decreased": -1, "changed_by": 0}[kind]
        found = _exceeds(rule, old_n, new_n, direction)
        if found is None:
            return NOT_HOLDING
        evidence.update(found)
    elif kind == "backwards":
        order = rule.order or []
        if old not in order or new not in order or order.index(new) >= order.index(old):
            return NOT_HOLDING
        evidence["steps_back"] = order.index(old) - order.index(new)
    elif kind == "pushed_later":
        old_d, new_d = as_date(old), as_date(new)
        if old_d is None or new_d is None or new_d <= old_d or is_blank(old):
            return NOT_HOLDING
        pushes = int(state.get("pushes", 0)) + 1
        new_state = {"pushes": pushes}
        evidence.update({"pushes": pushes, "days_pushed": (new_d - old_d).days})
        if pushes < rule.min_pushes:
            return Outcome(holds=False, evidence=evidence, state=new_state)
    if guard is not None and not guard.holds(change):
        return Outcome(holds=False, evidence=evidence, state=new_state)
    return Outcome(holds=True, evidence=evidence, point=True, state=new_state)


def possible(rule: TransitionRule, guard: CelExpression | None) -> Callable[[Change], bool]:
    """A transition needs its field to have changed on an existing record."""
    name = rule.field

    def check(change: Change) -> bool:
        return change.before is not None and name in change.changed

    return check
