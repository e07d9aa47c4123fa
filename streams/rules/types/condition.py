"""``condition``: a CEL condition on the record holds after a change.

A lasting situation by default (one episode until it stops holding); with ``each_time``
every change where it holds fires on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import Change, Outcome
from streams.rules.model import ConditionRule


def evaluate(
    rule: ConditionRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    assert guard is not None, "condition rules always carry their compiled condition"
    holds = guard.holds(change)
    return Outcome(holds=holds, evidence={"condition": rule.condition}, point=rule.each_time)


def possible(rule: ConditionRule, guard: CelExpression | None) -> Callable[[Change], bool] | None:
    """Not holding means nothing to do unless an episode is open (the engine knows): the
    pre-check is the condition itself."""
    return None if guard is None else guard.holds
