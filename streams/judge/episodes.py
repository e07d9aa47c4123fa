"""Alert episodes per (rule, subject): FIRING, REMINDER, ESCALATED, RESOLVED (pure).

An episode is opened by a rule outcome that holds, kept in the subject's state (entity
table, changelog-backed) and closed when the outcome stops holding or ``resolve_when``
holds. ``alert_id`` is derived from the rule, the subject and the cause that opened the
episode (event id, or timer deadline, or KPI snapshot time), so a replay yields the same
id; ``sequence`` increases with each status of the episode. Reminders follow the rule's
``realert`` (with exponential ``backoff``); after ``escalate_after`` reminders the next one
is an ESCALATED alert to the owner's manager.

Episode state: ``{"id", "seq", "at" (fired, epoch s), "ev" (cause), "n" (reminders sent),
"next" (next reminder, epoch s), "esc" (manager escalated to), "rv"/"sv" (rule version and
severity it opened with)}``, kept under the subject state's ``episodes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus, Subject, as_id, bounded_evidence
from streams.rules.change import Change, Outcome
from streams.rules.ruleset import CompiledRule
from streams.rules.template import render

Episode = dict[str, Any]
ManagerOf = Callable[[str | None], str | None]


def make_alert_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What an alert is about and what its templates may say."""

    subject: Subject
    owner_id: str | None
    cause: str
    now: datetime
    variables: dict[str, Any] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)
    occurred_at: datetime | None = None
    #: Activation of ``resolve_when`` (``None``: the rule has no record to look at).
    activation: dict[str, Any] | None = None


def change_context(compiled: CompiledRule, change: Change) -> AlertContext:
    event = change.event
    activation = change.activation()  # a fresh outer dict: the cached one stays untouched
    variables = dict(activation)
    variables["rule"] = {"id": compiled.id, "version": compiled.rule.version}
    variables["subject"] = {"entity": event.entity.value, "id": event.entity_id}
    owner = as_id(event.owner_id or change.after.get("owner_id"))  # a dirty record: text
    variables["owner"] = {"id": owner}
    return AlertContext(
        subject=Subject(kind="entity", entity=event.entity.value, id=event.entity_id),
        owner_id=owner,
        cause=event.event_id,
        now=change.now,
        variables=variables,
        event_ids=[] if change.timer else [event.event_id],
        occurred_at=None if change.timer else event.occurred_at,
        activation=activation,
    )


def _alert(
    compiled: CompiledRule,
    ctx: AlertContext,
    status: AlertStatus,
    episode: Episode,
    evidence: Mapping[str, Any],
    resolved_at: datetime | None = None,
) -> AlertEvent:
    rule = compiled.rule
    variables = dict(ctx.variables)
    variables["evidence"] = dict(evidence)
    title = rule.title or rule.description or rule.id
    if status is AlertStatus.RESOLVED:
        # the templates describe the situation that fired: read with its evidence
        opened = episode.get("evd")
        variables["evidence"] = {**(opened if isinstance(opened, dict) else {}), **evidence}
        title = f"Resolved: {render(title, variables)}"
        message = (
            render(rule.resolved_message, variables) if rule.resolved_message
            else f"Resolved: {render(rule.message, variables)}"
        )  # fmt: skip
    else:
        title = render(title, variables)
        message = render(rule.message, variables)
    return AlertEvent(
        alert_id=str(episode["id"]),
        status=status,
        rule_id=rule.id,
        rule_version=rule.version,
        severity=rule.severity,
        subject=ctx.subject,
        owner_id=ctx.owner_id,
        escalated_to=episode.get("esc"),
        title=title,
        message=message,
        evidence=dict(evidence),
        event_ids=list(ctx.event_ids),
        fired_at=datetime.fromtimestamp(float(episode["at"]), tz=UTC),
        resolved_at=resolved_at,
        sequence=int(episode["seq"]),
        occurred_at=ctx.occurred_at,
        reminders=int(episode.get("n", 0)),
    )


def _episode_id(compiled: CompiledRule, ctx: AlertContext) -> str:
    subject = ctx.subject
    if subject.kind == "entity":
        where = subject.entity
    elif subject.kind == "owner":
        where = "owner"
    else:
        where = f"kpi:{subject.scope}"
    return make_alert_id(compiled.id, where or "", subject.id, ctx.cause)


def _next_reminder(compiled: CompiledRule, sent: int, from_ts: float) -> float | None:
    realert = compiled.rule.realert
    if realert is None:
        return None
    delay = realert.every.total_seconds() * realert.backoff**sent
    if realert.max_every is not None:
        delay = min(delay, realert.max_every.total_seconds())
    return from_ts + delay


def step_context(
    compiled: CompiledRule, ctx: AlertContext, outcome: Outcome, episode: Episode | None
) -> tuple[list[AlertEvent], Episode | None]:
    """Advance the episode of ``compiled`` on one subject by one outcome."""
    now = ctx.now
    if outcome.skip is not None and episode is None:
        return [], None
    if outcome.holds and outcome.point:
        point = {"id": _episode_id(compiled, ctx), "seq": 1, "at": now.timestamp()}
        return [_alert(compiled, ctx, AlertStatus.FIRING, point, outcome.evidence)], episode
    resolve_now = (
        compiled.resolve is not None and episode is not None and ctx.activation is not None
        and compiled.resolve.evaluate_bool(ctx.activation)
    )  # fmt: skip
    if outcome.holds and episode is None and not outcome.point:
        alert_id = _episode_id(compiled, ctx)
        opened: Episode = {
            "id": alert_id, "seq": 1, "at": now.timestamp(), "ev": ctx.cause, "n": 0,
            "evd": bounded_evidence(dict(outcome.evidence)),
            # enough to close it even once the rule is gone (streams.judge.retire)
            "rv": compiled.rule.version, "sv": compiled.rule.severity.value,
        }  # fmt: skip
        nxt = _next_reminder(compiled, 0, now.timestamp())
        if nxt is not None:
            opened["next"] = nxt
        fired = _alert(compiled, ctx, AlertStatus.FIRING, opened, outcome.evidence)
        return [fired], opened
    if episode is not None and (resolve_now or (not outcome.holds and outcome.skip is None)):
        closed = dict(episode)
        closed["seq"] = int(episode["seq"]) + 1
        resolved = _alert(
            compiled, ctx, AlertStatus.RESOLVED, closed, outcome.evidence, resolved_at=now
        )
        return [resolved], None
    return [], episode


def remind(
    compiled: CompiledRule,
    ctx: AlertContext,
    episode: Episode,
    evidence: Mapping[str, Any],
    manager_of: ManagerOf,
) -> tuple[list[AlertEvent], Episode]:
    """REMINDER (or ESCALATED after ``escalate_after`` reminders) when one is due."""
    nxt = episode.get("next")
    now_ts = ctx.now.timestamp()
    if nxt is None or now_ts < float(nxt):
        return [], episode
    sent = int(episode.get("n", 0))
    updated = dict(episode)
    updated["seq"] = int(episode["seq"]) + 1
    updated["n"] = sent + 1
    limit = compiled.rule.escalate_after
    status = AlertStatus.REMINDER
    extra: dict[str, Any] = {}
    if limit is not None and sent >= limit and "esc" not in episode:
        status = AlertStatus.ESCALATED
        updated["esc"] = manager_of(ctx.owner_id)
        if updated["esc"] is None:
            extra["escalation"] = "no manager known for this owner"
    following = _next_reminder(compiled, sent + 1, float(nxt))
    if following is None or following <= now_ts:
        following = _next_reminder(compiled, sent + 1, now_ts)
    if following is None:
        updated.pop("next", None)
    else:
        updated["next"] = following
    alert = _alert(compiled, ctx, status, updated, {**dict(evidence), **extra})
    return [alert], updated


def step(
    compiled: CompiledRule, change: Change, outcome: Outcome, episode: Episode | None
) -> tuple[list[AlertEvent], Episode | None]:
    """Advance the episode of ``compiled`` on this record by one outcome (record rules)."""
    if episode is None and not outcome.holds:
        return [], None  # the common case: nothing open, nothing to open (no context built)
    return step_context(compiled, change_context(compiled, change), outcome, episode)
