"""``frequency`` rules with ``per: owner``, kept under this name for the agents: the logic
is :mod:`streams.judge.owner`'s. :func:`owner_hits` keeps its own small result type here
(messages, skips, errors), read from the judge's one batch result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from streams.judge import owner
from streams.judge.owner import count_hits, owner_partition, owner_rules, state_key
from streams.rules.change import Change
from streams.rules.ruleset import RuleSet

__all__ = [
    "OwnerHits", "count_hits", "owner_hits", "owner_partition", "owner_rules", "state_key",
]  # fmt: skip


@dataclass
class OwnerHits:
    """What :func:`owner_hits` found in one batch."""

    #: ``(owner, message)`` for the internal topic.
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    #: ``(rule, reason)``: matching changes that cannot be counted (record without owner).
    skips: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: rule id -> changes its condition raised on (isolated).
    errors: Counter[str] = field(default_factory=Counter)


def owner_hits(rules: RuleSet, changes: Sequence[Change]) -> OwnerHits:
    """The changes each owner-scoped frequency rule counts (:func:`owner.owner_hits`)."""
    found = owner.owner_hits(rules, changes)
    return OwnerHits(found.derived, found.stats.skips, found.stats.rule_errors)
