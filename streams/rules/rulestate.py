"""Per-rule state kept in entity state across rule reloads (pure).

Each record's state holds ``r`` (rule id -> rule state: counters, baselines), ``a`` (rule id
-> open alert episode) and ``t`` (rule id -> the rule type that wrote them). On a reload:

- same ``id`` and same ``type`` (any other edit, e.g. a threshold): the state is kept;
- same ``id``, another ``type``: the old state means nothing to the new type and is dropped;
- rule deleted: its state is dropped from each record the next time the record changes.

Open episodes of such rules are closed with a RESOLVED alert before this runs
(:mod:`streams.alerting.retired`).

State written before ``t`` existed is adopted by the current rule of that id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.rules.ruleset import RuleSet


def live_rule_state(
    state: Mapping[str, Any], rules: RuleSet
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Copies of ``r`` and ``a`` without the entries of deleted or retyped rules."""
    rule_states: dict[str, Any] = dict(state.get("r", {}))
    episodes: dict[str, Any] = dict(state.get("a", {}))
    if not rule_states and not episodes:
        return rule_states, episodes
    kinds: Mapping[str, str] = state.get("t", {})
    for rid in set(rule_states) | set(episodes):
        compiled = rules.get(rid)
        if compiled is None or kinds.get(rid, compiled.rule.type) != compiled.rule.type:
            rule_states.pop(rid, None)
            episodes.pop(rid, None)
    return rule_states, episodes


def store_rule_state(
    state: dict[str, Any],
    rule_states: Mapping[str, Any],
    episodes: Mapping[str, Any],
    rules: RuleSet,
) -> None:
    """Write ``r``, ``a`` and the type tags ``t`` back into ``state`` (empty ones removed)."""
    kinds: dict[str, str] = {}
    for rid in set(rule_states) | set(episodes):
        compiled = rules.get(rid)
        if compiled is not None:
            kinds[rid] = compiled.rule.type
    for key, value in (("r", rule_states), ("a", episodes), ("t", kinds)):
        if value:
            state[key] = dict(value)
        else:
            state.pop(key, None)
