"""The closed registry of rule types: ``type`` in a rule picks one entry, nothing else.

Adding a rule type means adding a module under :mod:`streams.rules.types`, its model to the
union in :mod:`streams.rules.model` and one line here; a config file can never name code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from streams.rules.cel_expr import CelExpression
from streams.rules.change import Change, Outcome
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import ConditionRule, RequiredFieldsRule, TransitionRule
from streams.rules.types import (
    condition,
    feed_silence,
    frequency,
    inactivity,
    kpi_anomaly,
    kpi_threshold,
    overdue,
    required_fields,
    transition,
)

Evaluate = Callable[[Any, Change, Mapping[str, Any], CelExpression | None], Outcome]
#: KPI rule types: ``(rule, point, series state, now) -> Outcome``.
EvaluateKpi = Callable[[Any, KpiPoint, Mapping[str, Any], datetime], Outcome]

#: ``possible(rule, guard)``: the rule's pre-check, bound once per compiled rule, or ``None``.
Possible = Callable[[Any, CelExpression | None], Callable[[Change], bool] | None]

#: How a rule type is driven. ``event``: on each record change. ``timer``: on each record
#: change *and* when the deadline kept in its state (``due``) comes (same pure function,
#: ``change.timer`` set). ``kpi``: on each ``crm.kpis`` snapshot of its KPI, and when ``due``
#: comes (sustain).
Kind = Literal["event", "timer", "kpi"]


#: ``watched(rule, reads)``: fields whose change can make the rule fire or resolve, or
#: ``None`` (any change). ``reads``: the record fields the rule's CEL (condition and
#: ``resolve_when``) reads, or ``None`` when it reads more (``old``, ``event``...) or unknown.
Watched = Callable[[Any, frozenset[str] | None], frozenset[str] | None]


@dataclass(frozen=True, slots=True)
class RuleType:
    name: str
    evaluate: Evaluate
    watched_fields: Watched
    kind: Kind = "event"
    evaluate_kpi: EvaluateKpi | None = None
    #: ``possible(rule, guard)`` returns ``check(change)``: ``False`` when ``evaluate`` would
    #: surely return "not holding" and no new state (lets the engine skip most rules at
    #: little cost).
    possible: Possible | None = None


def _condition_fields(rule: ConditionRule, reads: frozenset[str] | None) -> frozenset[str] | None:
    """A lasting condition on record fields can only change when one of them changes;
    ``each_time`` fires on every change where it holds, so it meets every change."""
    return None if rule.each_time else reads


def _transition_fields(rule: TransitionRule, reads: frozenset[str] | None) -> frozenset[str]:
    return frozenset({rule.field})  # it never fires unless its field changed


def _required_fields(
    rule: RequiredFieldsRule, reads: frozenset[str] | None
) -> frozenset[str] | None:
    if reads is None:
        return None
    stage = {"stage"} if rule.when_stages is not None else set()
    return frozenset(rule.fields) | stage | reads


def _any_field(rule: Any, reads: frozenset[str] | None) -> frozenset[str] | None:
    return None


def _frequency_fields(rule: Any, reads: frozenset[str] | None) -> frozenset[str] | None:
    return None if rule.fields is None else frozenset(rule.fields)  # the condition filters


def _not_event_driven(
    rule: Any, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    raise TypeError(f"rule type {rule.type} is driven by KPI snapshots, not record changes")


REGISTRY: Mapping[str, RuleType] = MappingProxyType(
    {
        "condition": RuleType(
            "condition", condition.evaluate, _condition_fields, possible=condition.possible
        ),
        "transition": RuleType(
            "transition", transition.evaluate, _transition_fields, possible=transition.possible
        ),
        "required_fields": RuleType(
            "required_fields",
            required_fields.evaluate,
            _required_fields,
            possible=required_fields.possible,
        ),
        "inactivity": RuleType("inactivity", inactivity.evaluate, _any_field, kind="timer"),
        "overdue": RuleType("overdue", overdue.evaluate, _any_field, kind="timer"),
        "frequency": RuleType(
            "frequency", frequency.evaluate, _frequency_fields, possible=frequency.possible
        ),
        "kpi_threshold": RuleType(
            "kpi_threshold",
            _not_event_driven,
            _any_field,
            kind="kpi",
            evaluate_kpi=kpi_threshold.evaluate_kpi,
        ),
        "kpi_anomaly": RuleType(
            "kpi_anomaly",
            _not_event_driven,
            _any_field,
            kind="kpi",
            evaluate_kpi=kpi_anomaly.evaluate_kpi,
        ),
        "feed_silence": RuleType(
            "feed_silence",
            _not_event_driven,
            _any_field,
            kind="kpi",
            evaluate_kpi=feed_silence.evaluate_kpi,
        ),
    }
)
