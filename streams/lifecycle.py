"""Alert episodes per (rule, subject): FIRING once, RESOLVED when the situation ends.

Pure: takes the rule's outcome and the open episode (from entity state), returns the alerts
to emit and the new open episode. ``alert_id`` is derived from the rule, the subject and the
event that opened the episode, so a replayed event yields the very same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus, Subject
from streams.rules.change import Change, Outcome
from streams.rules.ruleset import CompiledRule
from streams.rules.template import render

Episode = dict[str, Any]


def make_alert_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def _variables(
    compiled: CompiledRule, change: Change, evidence: Mapping[str, Any]
) -> dict[str, Any]:
    variables = change.activation()
    variables["evidence"] = dict(evidence)
    variables["rule"] = {"id": compiled.id, "version": compiled.rule.version}
    variables["subject"] = {"entity": change.event.entity.value, "id": change.event.entity_id}
    return variables


def _alert(
    compiled: CompiledRule,
    change: Change,
    status: AlertStatus,
    alert_id: str,
    sequence: int,
    evidence: Mapping[str, Any],
    fired_at: datetime,
    resolved_at: datetime | None = None,
) -> AlertEvent:
    rule = compiled.rule
    variables = _variables(compiled, change, evidence)
    event = change.event
    return AlertEvent(
        alert_id=alert_id,
        status=status,
        rule_id=rule.id,
        rule_version=rule.version,
        severity=rule.severity,
        subject=Subject(kind="entity", entity=event.entity.value, id=event.entity_id),
        owner_id=event.owner_id or change.after.get("owner_id"),
        title=render(rule.title or rule.description or rule.id, variables),
        message=render(rule.message, variables),
        evidence=dict(evidence),
        event_ids=[event.event_id],
        fired_at=fired_at,
        resolved_at=resolved_at,
        sequence=sequence,
        occurred_at=event.occurred_at,
    )


def step(
    compiled: CompiledRule, change: Change, outcome: Outcome, episode: Episode | None
) -> tuple[list[AlertEvent], Episode | None]:
    """Advance the episode of ``compiled`` on this record by one outcome."""
    event = change.event
    now = change.now
    if outcome.holds and outcome.point:
        alert_id = make_alert_id(compiled.id, event.entity.value, event.entity_id, event.event_id)
        fired = _alert(compiled, change, AlertStatus.FIRING, alert_id, 1, outcome.evidence, now)
        return [fired], episode
    resolve_now = (
        compiled.resolve is not None
        and episode is not None
        and (compiled.resolve.evaluate_bool(change.cel_context()))
    )
    if outcome.holds and episode is None:
        alert_id = make_alert_id(compiled.id, event.entity.value, event.entity_id, event.event_id)
        fired = _alert(compiled, change, AlertStatus.FIRING, alert_id, 1, outcome.evidence, now)
        return [fired], {"id": alert_id, "seq": 1, "at": now.timestamp(), "ev": event.event_id}
    if episode is not None and (resolve_now or not outcome.holds):
        fired_at = datetime.fromtimestamp(float(episode["at"]), tz=UTC)
        resolved = _alert(
            compiled, change, AlertStatus.RESOLVED, str(episode["id"]), int(episode["seq"]) + 1,
            outcome.evidence, fired_at, resolved_at=now,
        )  # fmt: skip
        return [resolved], None
    return [], episode
