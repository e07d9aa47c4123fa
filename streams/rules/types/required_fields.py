"""``required_fields``: fields missing or blank for a record in a given state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import NOT_HOLDING, Change, Outcome
from streams.rules.model import RequiredFieldsRule
from streams.rules.types.values import is_blank


def evaluate(
    rule: RequiredFieldsRule,
    change: Change,
    state: Mapping[str, Any],
    guard: CelExpression | None,
) -> Outcome:
    after = change.after
    if rule.when_stages is not None and after.get("stage") not in rule.when_stages:
        return NOT_HOLDING
    if guard is not None and not guard.holds(change):
        return NOT_HOLDING
    missing = [name for name in rule.fields if is_blank(after.get(name))]
    if not missing:
        return NOT_HOLDING
    return Outcome(
        holds=True,
        evidence={
            "missing": missing,
            "missing_text": ", ".join(missing),
            "stage": after.get("stage"),
        },
    )


def possible(rule: RequiredFieldsRule, guard: CelExpression | None) -> Callable[[Change], bool]:
    """Out of the rule's stages, or its condition false: nothing can be missing."""
    stages = rule.when_stages
    holds = guard.holds if guard is not None else None

    def check(change: Change) -> bool:
        if stages is not None and change.after.get("stage") not in stages:
            return False
        return holds is None or holds(change)

    return check
