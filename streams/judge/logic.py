"""The per-subject logic: one object judges a subject's state on a change, on a due timer and
on a KPI point, and says when the subject is due next (pure apart from the times given).

Per-rule state across rule reloads: a subject's state keeps, per rule id, its rule state,
its open episode and the rule type that wrote them. Same ``id`` and same ``type`` (any other
edit, e.g. a threshold): kept. Same ``id``, another ``type``, or the rule deleted: its open
episode is closed with a RESOLVED alert (:mod:`streams.judge.retire`) and its state dropped
the next time the subject is judged. State written before the type tags existed is adopted
by the current rule of that id.

Every rule is isolated: a rule that raises on one subject is counted once
(:func:`streams.judge.result.rule_failed`) and skipped; the other rules are still judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, Subject, as_id
from streams.contracts.events import ChangeEvent, EntityKind, Op
from streams.judge.episodes import AlertContext, change_context, remind, step, step_context
from streams.judge.result import BatchResult, rule_failed
from streams.judge.retire import retire, retire_record
from streams.judge.state import EntityState, applied_at, merge_fields
from streams.org import OrgDirectory
from streams.rules.change import Change, Outcome
from streams.rules.kpi_point import KpiPoint, read_point
from streams.rules.ruleset import CompiledRule, RuleSet

_NO_STATE: Mapping[str, Any] = {}
_GONE = Outcome(holds=False, evidence={"reason": "record deleted"})


def kpi_context(compiled: CompiledRule, point: KpiPoint, now: datetime, cause: str) -> AlertContext:
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


def timer_change(key: bytes, state: EntityState, now: datetime, tz: str | None) -> Change:
    """The change a timer judges a record on: no new event, the record as it is."""
    entity, _, entity_id = key.decode().partition(":")
    ids = state.ids or ["none"]
    fields = dict(state.fields or {})
    # built, not validated: the ids come from the stored state (an event id of the
    # maximum length plus "@timer" would fail the input contract's length check)
    event = ChangeEvent.model_construct(
        event_id=f"{ids[-1]}@timer", source="crm-pulse.timer", entity=EntityKind(entity),
        entity_id=entity_id, op=Op.DELETE if state.deleted else Op.UPDATE,
        occurred_at=now, owner_id=as_id(state.owner), fields={}, actor=None, changed=None,
    )  # fmt: skip
    return Change(event=event, before=fields, after=fields, changed=frozenset(), now=now,
                  tz=tz, timer=True)  # fmt: skip


def kpi_applies(compiled: CompiledRule, point: KpiPoint) -> bool:
    rule: Any = compiled.rule
    return (
        (rule.scope_kinds is None or point.scope_kind in rule.scope_kinds)
        and (rule.scope_ids is None or point.scope_id in rule.scope_ids)
        and (rule.windows is None or point.window in rule.windows)
    )


def judged_at(state: EntityState, now: datetime) -> datetime:
    """The time a due subject is judged at: its earliest deadline (a function of its state,
    so the same on every replay), or for a deleted record the time its deletion was
    ingested; ``now`` when the state names no such time (a retired rule) or the deadline
    is not reached."""
    due = state.next_due()
    if due is not None and due <= 0.0:  # deleted: its episodes resolve
        due = state.applied_ingest_time()
    if due is None or due > now.timestamp():
        return now
    return datetime.fromtimestamp(due, tz=UTC)


class Judge:
    """Judges subjects with one rule set (fixed for the judge's life: one batch)."""

    __slots__ = ("dedup_window", "org", "out", "rules")

    def __init__(
        self, rules: RuleSet, out: BatchResult, *, org: OrgDirectory | None = None,
        dedup_window: int = 8,
    ) -> None:  # fmt: skip
        self.rules = rules
        self.org = org if org is not None else OrgDirectory()
        self.dedup_window = dedup_window
        #: where alerts, derived records and counts go.
        self.out = out

    @staticmethod
    def next_due(state: EntityState) -> float | None:
        return state.next_due()

    # -- a change -------------------------------------------------------------------------

    def on_change(
        self, event: ChangeEvent, state: EntityState | None, now: datetime,
        position: tuple[int, int] | None = None,
    ) -> EntityState | None:  # fmt: skip
        """Apply one valid event: the new state, or ``None`` when it is not applied (a
        replay, a duplicate, out of order). ``state`` itself is never changed."""
        out = self.out
        stats = out.stats
        if state is None:
            state = EntityState.new_record()
        if position is not None and state.replayed(position):
            stats.replays += 1
            return None
        ids = state.ids
        if ids is not None and event.event_id in ids:
            stats.duplicates += 1
            return None
        ts = event.epoch
        if state.out_of_order(ts):
            stats.out_of_order += 1  # policy: never merged over the newer state
            return None
        new = state.copy()
        if position is not None:
            new.applied = applied_at(position, now.timestamp())
        window = self.dedup_window
        if window:  # the last ``window`` ids, this one last (one list built)
            new.ids = (
                [*ids[1 - window :], event.event_id] if ids and window > 1 else [event.event_id]
            )
        entity = event.entity  # StrEnum members are their str values (no ``.value`` lookup)
        stats.events[(entity, event.op, event.source)] += 1
        existed = bool(state.fields) or state.created is not None
        before = state.fields if existed else None
        after, changed = merge_fields(before, event)
        new.fields = after
        new.updated = ts
        if new.created is None:
            new.created = ts
        if event.owner_id:
            new.owner = event.owner_id
        if event.op is Op.DELETE:
            new.deleted = True
        rules = self.rules
        if new.episodes:  # open episodes of deleted or retyped rules end on this touch
            out.alerts.extend(retire_record(new, rules, entity, event.entity_id, now))
        if not changed:
            stats.no_change += 1
            return new
        change = Change(
            event=event, before=before, after=after, changed=changed, now=now,
            tz=self.org.timezone_of(new.owner), cel_names=rules.variables,
            first_seen=new.created, last_seen=state.updated, owner_before=state.owner,
            owner=new.owner, position=position,
        )  # fmt: skip
        out.changes.append(change)
        # a snapshot read (ChangeEvent.snapshot) builds the state; no rule judges it
        candidates = (
            () if event.snapshot else rules.candidates(entity, changed, create=before is None)
        )
        if not candidates and not new.rules and not new.episodes:
            return new  # nothing to judge, no rule state to keep up to date
        rule_states, episodes = self._live(new)
        for compiled in candidates:
            rid = compiled.id
            episode = episodes.get(rid)
            try:
                if episode is None:
                    possible = compiled.possible
                    if possible is not None and not possible(change):
                        continue  # cannot hold, no state to change: the common case
                outcome = compiled.evaluate(change, rule_states.get(rid, _NO_STATE))
                if episode is None and not outcome.holds:
                    if outcome.state is not None or outcome.skip is not None:
                        self._fold(rid, outcome, (), None, rule_states, episodes)
                    continue
                alerts, episode = step(compiled, change, outcome, episode)
            except Exception as exc:  # isolate: one rule never stops the others
                rule_failed(stats, rid, exc, f"{entity} {event.entity_id}")
                continue
            self._fold(rid, outcome, alerts, episode, rule_states, episodes)
        self._store(new, rule_states, episodes)
        return new

    def _live(self, state: EntityState) -> tuple[dict[str, Any], dict[str, Any]]:
        """Copies of the rule states and episodes without those of deleted or retyped rules."""
        rule_states = dict(state.rules)
        episodes = dict(state.episodes)
        if not rule_states and not episodes:
            return rule_states, episodes
        kinds = state.kinds
        get = self.rules.get
        for held in (state.rules, state.episodes) if episodes else (state.rules,):
            for rid in held:
                compiled = get(rid)
                if compiled is None or kinds.get(rid, compiled.rule.type) != compiled.rule.type:
                    rule_states.pop(rid, None)
                    episodes.pop(rid, None)
        return rule_states, episodes

    def _store(
        self, state: EntityState, rule_states: dict[str, Any], episodes: dict[str, Any]
    ) -> None:
        """Rule states, episodes and the type tags of their rules back into ``state``."""
        held = (rule_states.keys() | episodes.keys()) if episodes else rule_states.keys()
        get = self.rules.get
        kinds: dict[str, str] = {}
        for rid in held:
            compiled = get(rid)
            if compiled is not None:
                kinds[rid] = compiled.rule.type
        state.rules, state.episodes, state.kinds = rule_states, episodes, kinds

    def _fold(
        self, rid: str, outcome: Outcome, alerts: Any, episode: dict[str, Any] | None,
        rule_states: dict[str, Any], episodes: dict[str, Any],
    ) -> None:  # fmt: skip
        """One rule's outcome and episode step into the subject's rule state and the batch."""
        if outcome.skip is not None:
            self.out.stats.skips[(rid, outcome.skip)] += 1
        if outcome.state is not None:
            rule_states[rid] = dict(outcome.state)
        if episode is None:
            episodes.pop(rid, None)
        else:
            episodes[rid] = episode
        if alerts:
            self.out.alerts.extend(alerts)

    def _apply(
        self, state: EntityState, compiled: CompiledRule, ctx: AlertContext, outcome: Outcome
    ) -> None:
        """One outcome of ``compiled`` judged outside a change (timer, KPI point)."""
        rule_states = dict(state.rules)
        episodes = dict(state.episodes)
        alerts, episode = step_context(compiled, ctx, outcome, episodes.get(compiled.id))
        self._fold(compiled.id, outcome, alerts, episode, rule_states, episodes)
        state.rules, state.episodes = rule_states, episodes

    # -- a due timer ----------------------------------------------------------------------

    def on_due_record(self, key: bytes, state: EntityState, now: datetime) -> None:
        """Judge a record again at ``now`` (its deadline): timer rules, the end of the open
        episodes of a deleted record, reminders and escalations. ``state`` is changed."""
        change = timer_change(key, state, now, self.org.timezone_of(state.owner))
        entity = change.event.entity.value
        rules = self.rules
        what = key.decode(errors="replace")
        # open episodes of deleted or retyped rules end first (their rule cannot judge them)
        self.out.alerts.extend(retire_record(state, rules, entity, change.event.entity_id, now))
        if state.deleted:  # deleted: every open episode ends
            for rid in list(state.episodes):
                compiled = rules.get(rid)
                if compiled is None:
                    continue
                self._apply(state, compiled, change_context(compiled, change), _GONE)
        for compiled in rules.timer_rules(entity):
            rid = compiled.id
            try:
                rule_state = state.rules.get(rid, {})
                outcome = compiled.evaluate(change, rule_state)
                # the deadline is part of the cause: one alert id per episode, stable on replay
                ctx = change_context(compiled, change)
                ctx = replace(ctx, cause=f"{ctx.cause}:{rule_state.get('due')}")
                self._apply(state, compiled, ctx, outcome)
            except Exception as exc:
                rule_failed(self.out.stats, rid, exc, what)
        self._remind(state, lambda c: change_context(c, change), what)

    def on_due_series(self, state: EntityState, now: datetime) -> None:
        """Judge a KPI series again at ``now``: sustained KPI rules, reminders."""
        point = read_point(state.kpi, now)
        if isinstance(point, str):
            return
        subject = Subject(kind="kpi", id=point.kpi, scope=point.scope)
        owner = point.scope_id if point.scope_kind == "owner" else None
        self.out.alerts.extend(retire(state, self.rules, subject, owner, now))
        for compiled in self.rules.kpi_rules(point.kpi):
            rid = compiled.id
            rule_state = state.rules.get(rid)
            if not rule_state or rule_state.get("due") is None or rid in state.episodes:
                continue
            try:
                assert compiled.spec.evaluate_kpi is not None
                outcome = compiled.spec.evaluate_kpi(compiled.rule, point, rule_state, now)
                cause = f"{point.computed_at.isoformat()}@{rule_state['due']}"
                self._apply(state, compiled, kpi_context(compiled, point, now, cause), outcome)
            except Exception as exc:
                rule_failed(self.out.stats, rid, exc, point.series)
        self._remind(state, lambda c: kpi_context(c, point, now, "reminder"), point.series)

    def _remind(self, state: EntityState, ctx_of: Any, what: str) -> None:
        episodes: dict[str, Any] = dict(state.episodes)
        alerts: list[AlertEvent] = self.out.alerts
        for rid, episode in list(episodes.items()):
            compiled = self.rules.get(rid)
            if compiled is None:
                continue
            try:
                sent, updated = remind(
                    compiled, ctx_of(compiled), episode, episode.get("evd", {}),
                    self.org.manager_of,
                )  # fmt: skip
            except Exception as exc:
                rule_failed(self.out.stats, rid, exc, what)
                continue
            episodes[rid] = updated
            alerts.extend(sent)
        if episodes:
            state.episodes = episodes

    # -- a KPI point ----------------------------------------------------------------------

    def watching(self, point: KpiPoint) -> list[CompiledRule]:
        """The KPI rules that judge ``point``."""
        return [c for c in self.rules.kpi_rules(point.kpi) if kpi_applies(c, point)]

    def on_point(
        self, point: KpiPoint, state: EntityState | None, partition: int, now: datetime,
        candidates: list[CompiledRule] | None = None,
    ) -> EntityState:  # fmt: skip
        """Judge one KPI snapshot of a series: the series' new state (``state`` unchanged)."""
        new = state.copy() if state is not None else EntityState()
        new.kpi = point.to_dict()
        new.partition = partition
        if point.scope_kind == "owner":
            new.owner = point.scope_id
        for compiled in self.watching(point) if candidates is None else candidates:
            rid = compiled.id
            try:
                assert compiled.spec.evaluate_kpi is not None
                rule_state: Mapping[str, Any] = new.rules.get(rid, {})
                outcome = compiled.spec.evaluate_kpi(compiled.rule, point, rule_state, now)
                ctx = kpi_context(compiled, point, now, point.computed_at.isoformat())
                self._apply(new, compiled, ctx, outcome)
            except Exception as exc:
                rule_failed(self.out.stats, rid, exc, point.series)
        return new
