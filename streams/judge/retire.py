"""Open episodes of deleted or retyped rules end with a RESOLVED alert (pure).

A rule deleted from ``crm.rules``, or replaced by a rule of another ``type`` under the same
id, leaves its open episodes in the states of the records (or KPI series) it fired on. They
are closed, each with one RESOLVED alert (``evidence.reason``: ``"rule deleted"`` or
``"rule changed"``), the next time the record changes or when the timer scan reaches it
(:class:`streams.judge.logic.Judge`). The worker schedules the states holding such episodes
for the next scan when the rule set loses or retypes a rule, and after every recovery or
rebalance, so no event pays for a table scan.

The rule may be gone, so the alert is built from the episode alone: the rule version and
severity it was opened with (``rv``, ``sv``; episodes opened before they were kept fall back
to the current rule of that id, else version 1 and ``warning``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.judge.state import EntityState, state_of
from streams.rules.ruleset import RuleSet

RULE_DELETED = "rule deleted"
RULE_CHANGED = "rule changed"


def retired_rules(state: EntityState | Mapping[str, Any], rules: RuleSet) -> dict[str, str]:
    """Rule id -> reason, for each open episode of ``state`` whose rule is gone or retyped."""
    typed = state_of(state)
    episodes = typed.episodes
    if not episodes:
        return {}
    kinds = typed.kinds
    found: dict[str, str] = {}
    for rid in episodes:
        compiled = rules.get(rid)
        if compiled is None:
            found[rid] = RULE_DELETED
        elif kinds.get(rid, compiled.rule.type) != compiled.rule.type:
            found[rid] = RULE_CHANGED
    return found


def retired_ids(before: RuleSet, after: RuleSet) -> set[str]:
    """Ids of the rules of ``before`` deleted or given another type in ``after``."""
    gone: set[str] = set()
    for compiled in before.rules:
        now = after.get(compiled.id)
        if now is None or now.rule.type != compiled.rule.type:
            gone.add(compiled.id)
    return gone


def _resolved(
    rid: str, reason: str, episode: Mapping[str, Any], rules: RuleSet, subject: Subject,
    owner_id: str | None, now: datetime,
) -> AlertEvent:  # fmt: skip
    current = rules.get(rid)
    version = episode.get("rv") or (current.rule.version if current is not None else 1)
    severity = episode.get("sv") or (current.rule.severity if current is not None else None)
    what = "was deleted" if reason == RULE_DELETED else "changed type"
    return AlertEvent(
        alert_id=str(episode["id"]),
        status=AlertStatus.RESOLVED,
        rule_id=rid,
        rule_version=int(version),
        severity=Severity(severity or Severity.WARNING),
        subject=subject,
        owner_id=owner_id,
        escalated_to=episode.get("esc"),
        title=f"{rid}: rule {what}",
        message=f"Alert closed: rule {rid} {what}.",
        evidence={"reason": reason},
        fired_at=datetime.fromtimestamp(float(episode["at"]), tz=UTC),
        resolved_at=now,
        sequence=int(episode["seq"]) + 1,
        reminders=int(episode.get("n", 0)),
    )


def retire(
    state: EntityState, rules: RuleSet, subject: Subject, owner_id: str | None, now: datetime
) -> list[AlertEvent]:
    """Close the open episodes of retired rules in ``state`` (its containers replaced): one
    RESOLVED alert each; their episode, rule state and type tag are removed."""
    found = retired_rules(state, rules)
    if not found:
        return []
    episodes = dict(state.episodes)
    rule_states = dict(state.rules)
    kinds = dict(state.kinds)
    alerts: list[AlertEvent] = []
    for rid, reason in sorted(found.items()):
        episode = episodes.pop(rid)
        alerts.append(_resolved(rid, reason, episode, rules, subject, owner_id, now))
        rule_states.pop(rid, None)
        kinds.pop(rid, None)
    state.episodes, state.rules, state.kinds = episodes, rule_states, kinds
    return alerts


def retire_record(
    state: EntityState, rules: RuleSet, entity: str, entity_id: str, now: datetime
) -> list[AlertEvent]:
    """:func:`retire` on a CRM record's state."""
    subject = Subject(kind="entity", entity=entity, id=entity_id)
    return retire(state, rules, subject, state.owner, now)
