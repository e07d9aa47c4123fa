"""The closed registry of rule types: ``type`` in a rule picks one entry, nothing else.

Adding a rule type means adding a module under :mod:`streams.rules.types`, its model to the
union in :mod:`streams.rules.model` and one line here; a config file can never name code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import Change, Outcome
from streams.rules.model import ConditionRule, RequiredFieldsRule, TransitionRule
from streams.rules.types import condition, required_fields, transition

Evaluate = Callable[[Any, Change, Mapping[str, Any], CelExpression | None], Outcome]


@dataclass(frozen=True, slots=True)
class RuleType:
    name: str
    evaluate: Evaluate
    #: Fields whose change can make the rule fire or resolve; ``None``: any change.
    watched_fields: Callable[[Any], frozenset[str] | None]


def _transition_fields(rule: TransitionRule) -> frozenset[str] | None:
    return None if rule.condition else frozenset({rule.field})


def _required_fields(rule: RequiredFieldsRule) -> frozenset[str] | None:
    if rule.condition:
        return None
    return frozenset(rule.fields) | ({"stage"} if rule.when_stages is not None else frozenset())


def _any_field(rule: ConditionRule) -> frozenset[str] | None:
    return None


REGISTRY: Mapping[str, RuleType] = MappingProxyType(
    {
        "condition": RuleType("condition", condition.evaluate, _any_field),
        "transition": RuleType("transition", transition.evaluate, _transition_fields),
        "required_fields": RuleType("required_fields", required_fields.evaluate, _required_fields),
    }
)
