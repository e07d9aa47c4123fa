"""Timer-driven and KPI-driven evaluation (pure apart from the given clock value).

``fire_due``: records and KPI series whose deadline came are judged again (timer rule
types, KPI sustain) and their open episodes get their reminders/escalations.
``process_kpis``: ``crm.kpis`` snapshots through the KPI rules. Both return a
:class:`~streams.engine.BatchResult` the agents ship exactly like the ingest batch.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from streams.alerting.retired import retire, retire_record
from streams.contracts.alerts import AlertEvent, Subject, as_id
from streams.contracts.events import ChangeEvent, EntityKind, Op
from streams.decode import RawRecord
from streams.engine import (
    BatchResult,
    StateLookup,
    ThrottledLog,
    next_due,
    record_outcome,
    safe_next_due,
)
from streams.lifecycle import AlertContext, change_context, remind, step_context
from streams.org import OrgDirectory
from streams.rules.change import Change, Outcome
from streams.rules.kpi_point import KpiPoint, decode_point, read_point
from streams.rules.ruleset import CompiledRule, RuleSet
from streams.state import STATE_MAX_BYTES, EntityState, decode_state, encode_state

log = logging.getLogger(__name__)
_errors = ThrottledLog()
KPI_PREFIX = b"kpi:"


def _isolated(result: BatchResult, rid: str, exc: Exception, what: str) -> None:
    result.stats.rule_errors[rid] += 1
    if _errors.should_log(rid):
        log.warning("rule %s raised on %s (%s: %s); isolated", rid, what, type(exc).__name__, exc)


def _failed(result: BatchResult, stage: str, exc: Exception, what: str) -> None:
    """A whole record or series that could not be judged: counted, logged, skipped."""
    result.stats.processing_errors[stage] += 1
    if _errors.should_log(f"stage:{stage}"):
        log.warning("%s failed on %s (%s: %s); skipped", stage, what, type(exc).__name__, exc)


def _timer_change(key: bytes, state: EntityState, now: datetime, tz: str | None) -> Change:
    entity, _, entity_id = key.decode().partition(":")
    ids = state.get("ids") or ["none"]
    fields = dict(state.get("f", {}))
    # built, not validated: the ids come from the stored state (an event id of the
    # maximum length plus "@timer" would fail the input contract's length check)
    event = ChangeEvent.model_construct(
        event_id=f"{ids[-1]}@timer", source="crm-pulse.timer", entity=EntityKind(entity),
        entity_id=entity_id, op=Op.DELETE if state.get("x") else Op.UPDATE,
        occurred_at=now, owner_id=as_id(state.get("o")), fields={}, actor=None, changed=None,
    )  # fmt: skip
    return Change(event=event, before=fields, after=fields, changed=frozenset(), now=now,
                  tz=tz, timer=True)  # fmt: skip


def _kpi_context(
    compiled: CompiledRule, point: KpiPoint, now: datetime, cause: str
) -> AlertContext:
    owner = point.scope_id if point.scope_kind == "owner" else None
    variables: dict[str, Any] = {
        "rule": {"id": compiled.id, "version": compiled.rule.version},
        "subject": {"kind": "kpi", "id": point.kpi, "scope": point.scope},
        "kpi": {"id": point.kpi, "scope": point.scope, "window": point.window,
                "value": point.value, "trust": point.trust},
        "owner": {"id": owner},
    }  # fmt: skip
    return AlertContext(
        subject=Subject(kind="kpi", id=point.kpi, scope=point.scope),
        owner_id=owner, cause=cause, now=now, variables=variables,
        occurred_at=point.computed_at,
    )  # fmt: skip


def _reminders(
    rules: RuleSet, state: EntityState, ctx_of: Any, now: datetime, org: OrgDirectory,
    result: BatchResult, what: str,
) -> None:  # fmt: skip
    episodes: dict[str, Any] = dict(state.get("a", {}))
    for rid, episode in list(episodes.items()):
        compiled = rules.get(rid)
        if compiled is None:
            continue
        try:
            alerts, updated = remind(
                compiled, ctx_of(compiled), episode, episode.get("evd", {}), org.manager_of
            )
        except Exception as exc:
            _isolated(result, rid, exc, what)
            continue
        episodes[rid] = updated
        result.alerts.extend(alerts)
    if episodes:
        state["a"] = episodes


def _apply_outcome(
    state: EntityState, compiled: CompiledRule, ctx: AlertContext, outcome: Outcome,
    result: BatchResult,
) -> None:  # fmt: skip
    rid = compiled.id
    rule_states = dict(state.get("r", {}))
    episodes = dict(state.get("a", {}))
    alerts, episode = step_context(compiled, ctx, outcome, episodes.get(rid))
    record_outcome(rid, outcome, alerts, episode, rule_states, episodes, result)
    state["r"] = rule_states
    state["a"] = episodes


def _fire_record(
    rules: RuleSet, key: bytes, state: EntityState, now: datetime, org: OrgDirectory,
    result: BatchResult,
) -> None:  # fmt: skip
    change = _timer_change(key, state, now, org.timezone_of(state.get("o")))
    entity = change.event.entity.value
    # open episodes of deleted or retyped rules end first (their rule cannot judge them)
    result.alerts.extend(retire_record(state, rules, entity, change.event.entity_id, now))
    if state.get("x"):  # deleted: every open episode ends
        gone = Outcome(holds=False, evidence={"reason": "record deleted"})
        for rid in list(state.get("a", {})):
            compiled = rules.get(rid)
            if compiled is None:
                continue
            _apply_outcome(state, compiled, change_context(compiled, change), gone, result)
    for compiled in rules.timer_rules(entity):
        rid = compiled.id
        try:
            rule_state = state.get("r", {}).get(rid, {})
            outcome = compiled.evaluate(change, rule_state)
            # the deadline is part of the cause: one alert id per episode, stable on replay
            ctx = change_context(compiled, change)
            ctx = replace(ctx, cause=f"{ctx.cause}:{rule_state.get('due')}")
            _apply_outcome(state, compiled, ctx, outcome, result)
        except Exception as exc:
            _isolated(result, rid, exc, key.decode(errors="replace"))
    _reminders(rules, state, lambda c: change_context(c, change), now, org, result,
               key.decode(errors="replace"))  # fmt: skip


def _fire_series(
    rules: RuleSet, state: EntityState, now: datetime, org: OrgDirectory, result: BatchResult
) -> None:
    point = read_point(state.get("k"), now)
    if isinstance(point, str):
        return
    subject = Subject(kind="kpi", id=point.kpi, scope=point.scope)
    owner = point.scope_id if point.scope_kind == "owner" else None
    result.alerts.extend(retire(state, rules, subject, owner, now))
    for compiled in rules.kpi_rules(point.kpi):
        rid = compiled.id
        rule_state = state.get("r", {}).get(rid)
        if not rule_state or rule_state.get("due") is None or rid in state.get("a", {}):
            continue
        try:
            assert compiled.spec.evaluate_kpi is not None
            outcome = compiled.spec.evaluate_kpi(compiled.rule, point, rule_state, now)
            cause = f"{point.computed_at.isoformat()}@{rule_state['due']}"
            _apply_outcome(state, compiled, _kpi_context(compiled, point, now, cause), outcome,
                           result)  # fmt: skip
        except Exception as exc:
            _isolated(result, rid, exc, point.series)
    _reminders(rules, state, lambda c: _kpi_context(c, point, now, "reminder"), now, org, result,
               point.series)  # fmt: skip


def fire_due(
    rules: RuleSet,
    keys: Sequence[bytes],
    lookup: StateLookup,
    now: datetime,
    org: OrgDirectory,
    partitions: Collection[int] | None = None,
    state_max_bytes: int = STATE_MAX_BYTES,
) -> BatchResult:
    """Judge again the records/series whose deadline came; returns alerts and writes.

    ``partitions``: the changelog partitions this worker owns; other keys are left alone
    (their new owner judges them). Each record is judged at its deadline
    (:func:`judged_at`), not at the scan's time, so a timer alert replayed after a crash has
    the same content.
    """
    result = BatchResult()
    for key in keys:
        marks = len(result.alerts)
        try:
            state = decode_state(lookup(key))
            if state is None or "p" not in state:
                continue
            partition = int(state["p"])
            if partitions is not None and partition not in partitions:
                continue
            state = dict(state)
            at = judged_at(state, now)
            if key.startswith(KPI_PREFIX):
                _fire_series(rules, state, at, org, result)
            else:
                _fire_record(rules, key, state, at, org, result)
        except Exception as exc:  # an unreadable record never stops the timer loop
            del result.alerts[marks:]
            _isolated(result, "timer", exc, key.decode(errors="replace"))
            _failed(result, "timer", exc, key.decode(errors="replace"))
            result.due[key] = None  # not judged again at every tick
            continue
        for name in ("r", "a"):
            if not state.get(name):
                state.pop(name, None)
        result.writes[key] = (partition, encode_state(state, state_max_bytes))
        due = safe_next_due(state, key)
        # a deadline already passed is judged at the next scan (at its own time)
        result.due[key] = due if due is not None and due > at.timestamp() else None
    return result


def judged_at(state: Mapping[str, Any], now: datetime) -> datetime:
    """The time a due record is judged at: its earliest deadline (a function of its state,
    so the same on every replay), or for a deleted record the time its deletion was
    ingested; ``now`` when the state names no such time (a retired rule) or the deadline
    is not reached."""
    due = next_due(state)
    if due is not None and due <= 0.0:  # deleted: its episodes resolve
        applied = state.get("q")
        due = float(applied[2]) if applied and len(applied) > 2 else None
    if due is None or due > now.timestamp():
        return now
    return datetime.fromtimestamp(due, tz=UTC)


def series_key(point: KpiPoint) -> bytes:
    return KPI_PREFIX + point.series.encode()


def _kpi_applies(compiled: CompiledRule, point: KpiPoint) -> bool:
    rule: Any = compiled.rule
    return (
        (rule.scope_kinds is None or point.scope_kind in rule.scope_kinds)
        and (rule.scope_ids is None or point.scope_id in rule.scope_ids)
        and (rule.windows is None or point.window in rule.windows)
    )


def process_kpis(
    rules: RuleSet, records: Sequence[RawRecord], lookup: StateLookup, now: datetime
) -> BatchResult:
    """KPI snapshots through the KPI rules watching them (state per series)."""
    result = BatchResult()
    if not rules.has_kpi_rules:
        return result  # nothing watches a KPI: the snapshots are only acknowledged
    cache: dict[bytes, EntityState] = {}
    for raw in records:
        try:
            _judge_point(rules, raw, lookup, now, cache, result)
        except Exception as exc:  # one unreadable snapshot or series never stops the agent
            _failed(result, "kpi_rules", exc, f"{raw.topic}[{raw.partition}]@{raw.offset}")
    for key, state in cache.items():
        for name in ("r", "a"):
            if not state.get(name):
                state.pop(name, None)
        result.writes[key] = (int(state["p"]), encode_state(state))
        result.due[key] = safe_next_due(state, key)
    return result


def _judge_point(
    rules: RuleSet, raw: RawRecord, lookup: StateLookup, now: datetime,
    cache: dict[bytes, EntityState], result: BatchResult,
) -> None:  # fmt: skip
    point = decode_point(raw.value, now)
    if isinstance(point, str):
        result.stats.invalid[f"kpi_{point}"] += 1
        return
    candidates = [c for c in rules.kpi_rules(point.kpi) if _kpi_applies(c, point)]
    if not candidates:
        return
    key = series_key(point)
    state = cache.get(key)
    if state is None:
        state = dict(decode_state(lookup(key)) or {})
    state = dict(state)  # the cached state changes only once this snapshot went through
    state["k"] = point.to_dict()
    state["p"] = raw.partition
    if point.scope_kind == "owner":
        state["o"] = point.scope_id
    for compiled in candidates:
        rid = compiled.id
        try:
            assert compiled.spec.evaluate_kpi is not None
            rule_state: Mapping[str, Any] = state.get("r", {}).get(rid, {})
            outcome = compiled.spec.evaluate_kpi(compiled.rule, point, rule_state, now)
            ctx = _kpi_context(compiled, point, now, point.computed_at.isoformat())
            _apply_outcome(state, compiled, ctx, outcome, result)
        except Exception as exc:
            _isolated(result, rid, exc, point.series)
    cache[key] = state


def alerts_of(result: BatchResult) -> list[AlertEvent]:
    return result.alerts
