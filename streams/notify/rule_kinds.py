"""Which live rules raise point events (pure): their alerts are never RESOLVED."""

from __future__ import annotations

from collections.abc import Iterable

from streams.rules.ruleset import CompiledRule

#: Rule types whose every firing is a point-in-time episode (docs/alerts.md).
POINT_TYPES = frozenset({"transition", "frequency"})


def point_rule_ids(rules: Iterable[CompiledRule]) -> frozenset[str]:
    return frozenset(
        c.id
        for c in rules
        if c.spec.name in POINT_TYPES
        or (c.spec.name == "condition" and getattr(c.rule, "each_time", False))
    )
