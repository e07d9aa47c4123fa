"""The hot path: one batch of raw records in, alerts, dead letters and state writes out.

Pure apart from the clock and the read-only state lookup it is given, so it is unit-tested
without Kafka and benchmarked without Faust. The Faust agent only feeds batches and ships
what comes out (:mod:`streams.agents.ingest`). Per-batch work, never per-event awaits:
decoding, dedup, merge, indexed rule evaluation; counters are aggregated per batch.

Every record is isolated: whatever raises while one record is processed (state decode,
merge, rule state, alert building, a change check such as the KPI facts) sends that record
to the dead-letter topic with reason ``processing_error`` and a detail naming the stage and
the exception type; what it had produced is taken back, it is counted
(``BatchStats.processing_errors``) and the batch goes on with the next record. One ``try``
per record: nothing is paid on the path of a record that does not raise.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streams.alerting.retired import retire_record
from streams.clock import Clock, utcnow, when_ingested
from streams.contracts.alerts import AlertEvent
from streams.contracts.deadletter import DeadLetter, DeadLetterReason
from streams.contracts.events import ChangeEvent, Op
from streams.decode import DecodeLimits, RawRecord, Refusal, dead_letter, decode_event
from streams.lifecycle import step
from streams.org import OrgDirectory
from streams.rules.change import Change, Outcome
from streams.rules.ruleset import RuleSet
from streams.rules.rulestate import live_rule_state, store_rule_state
from streams.state import (
    STATE_MAX_BYTES,
    EntityState,
    applied_at,
    decode_state,
    encode_state,
    merge_fields,
    out_of_order,
    record_key,
    replayed,
)

log = logging.getLogger(__name__)

StateLookup = Callable[[bytes], bytes | None]
#: A pure check of each accepted change (e.g. that its KPI facts can be built and encoded):
#: ``(stage name, check)``; a check that raises sends the record to the dead-letter topic.
ChangeCheck = tuple[str, Callable[[Change], object]]
_NO_STATE: Mapping[str, Any] = MappingProxyType({})
PROCESSING_ERROR = "processing_error"
#: Innermost function of a traceback -> the stage it belongs to (named in dead letters).
_STAGES = {
    "decode_event": "decode", "decode_state": "state_decode", "merge_fields": "merge",
    "retire_record": "retire", "live_rule_state": "rule_state",
    "store_rule_state": "rule_state", "step": "alert", "step_context": "alert",
    "change_context": "alert", "timezone_of": "org", "candidates": "rule_index",
}  # fmt: skip


def stage_of(exc: BaseException, default: str) -> str:
    """The stage a record's failure belongs to, from the innermost known function."""
    stage = default
    tb = exc.__traceback__
    while tb is not None:
        stage = _STAGES.get(tb.tb_frame.f_code.co_name, stage)
        tb = tb.tb_next
    return stage


@dataclass
class BatchStats:
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    #: input records at or before the position a record's state applied last (a catch-up).
    replays: int = 0
    #: changes older (``occurred_at``) than the record's last applied change: not merged.
    out_of_order: int = 0
    no_change: int = 0
    rule_errors: Counter[str] = field(default_factory=Counter)
    #: (rule, reason): records a rule could not judge (missing or unreadable field).
    skips: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: stage -> records whose processing raised (dead-lettered, or isolated by timers).
    processing_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchResult:
    alerts: list[AlertEvent] = field(default_factory=list)
    dead: list[tuple[RawRecord, DeadLetter]] = field(default_factory=list)
    #: state key -> (partition, encoded state): the last state of each touched record;
    #: ``None``: the record leaves the table (a changelog tombstone, see streams.retention).
    writes: dict[bytes, tuple[int, bytes | None]] = field(default_factory=dict)
    #: ChangeEvents accepted in this batch, with the record before/after (KPI feed).
    changes: list[Change] = field(default_factory=list)
    stats: BatchStats = field(default_factory=BatchStats)
    #: state key -> next timer deadline (epoch s) of the written state, ``None``: no timer.
    due: dict[bytes, float | None] = field(default_factory=dict)


class ThrottledLog:
    """Logs a given key at most once per ``every`` seconds (rule errors)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def should_log(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        self._last[key] = now
        return True


class Engine:
    """Applies one rule set to batches; ``rules`` may be swapped at any time (atomic)."""

    def __init__(
        self,
        rules: RuleSet | None = None,
        *,
        dedup_window: int = 8,
        clock: Clock = utcnow,
        org: OrgDirectory | None = None,
        limits: DecodeLimits | None = None,
        state_max_bytes: int = STATE_MAX_BYTES,
        change_checks: Sequence[ChangeCheck] = (),
    ) -> None:
        self.rules = rules if rules is not None else RuleSet()
        self.org = org if org is not None else OrgDirectory()
        self.dedup_window = dedup_window
        self.clock = clock
        self.limits = limits if limits is not None else DecodeLimits()
        self.state_max_bytes = state_max_bytes
        self.change_checks: list[ChangeCheck] = list(change_checks)
        self._error_log = ThrottledLog()

    def process(self, records: Sequence[RawRecord], lookup: StateLookup) -> BatchResult:
        result = BatchResult()
        now = self.clock()
        rules = self.rules  # one rule set for the whole batch, even if swapped meanwhile
        cache: dict[bytes, EntityState | None] = {}
        partitions: dict[bytes, int] = {}
        stats = result.stats
        checks = self.change_checks
        for raw in records:
            marks = (len(result.alerts), len(result.changes), stats.no_change)
            stage = "decode"
            try:
                decoded = decode_event(raw, now, self.limits)
                if isinstance(decoded, Refusal):
                    stats.invalid[decoded.reason] += 1
                    result.dead.append((raw, dead_letter(raw, decoded, now)))
                    continue
                counted = (decoded.entity, decoded.op, decoded.source)
                before = stats.events.get(counted, 0)  # taken back if the record fails
                key = record_key(decoded.entity, decoded.entity_id)  # a StrEnum is its value
                stage = "state_decode"
                if key in cache:
                    state = cache[key]
                else:
                    state = decode_state(lookup(key))
                    cache[key] = state
                stage = "apply"
                position = (raw.partition, raw.offset)
                # the time a change is judged at is its record's (Kafka) timestamp: a replay
                # of the same input renders the same alerts, whenever it runs
                at = when_ingested(raw.timestamp_ms, now)
                new_state = self._apply(decoded, state, rules, result, at, position)
                if checks and len(result.changes) > marks[1]:
                    for stage, check in checks:  # noqa: B007 - the stage names a failure
                        check(result.changes[-1])
            except Exception as exc:  # isolate: one record never stops the batch
                if stage != "decode":
                    stats.events[counted] = before
                self._refuse(raw, stage_of(exc, stage), exc, result, now, marks)
                continue
            if new_state is not None:
                cache[key] = new_state
                partitions[key] = raw.partition
        for key, partition in partitions.items():
            final = cache[key]
            assert final is not None
            final["p"] = partition  # the changelog partition, for timer writes
            result.writes[key] = (partition, encode_state(final, self.state_max_bytes))
            result.due[key] = safe_next_due(final, key)
        return result

    def _refuse(
        self, raw: RawRecord, stage: str, exc: Exception, result: BatchResult, now: Any,
        marks: tuple[int, int, int],
    ) -> None:  # fmt: skip
        """Take back what the failed record produced and dead-letter it."""
        del result.alerts[marks[0] :]
        del result.changes[marks[1] :]
        stats = result.stats
        stats.no_change = marks[2]
        stats.invalid[PROCESSING_ERROR] += 1
        stats.processing_errors[stage] += 1
        text = str(exc)
        detail = f"{stage}: {type(exc).__name__}: {text[:300]}{'…' if len(text) > 300 else ''}"
        refusal = Refusal(DeadLetterReason.PROCESSING_ERROR, None, detail)
        result.dead.append((raw, dead_letter(raw, refusal, now)))
        if self._error_log.should_log(f"stage:{stage}"):
            log.warning(
                "record at %s[%d]@%d failed in %s (%s); sent to the dead-letter topic",
                raw.topic, raw.partition, raw.offset, stage, type(exc).__name__,
            )  # fmt: skip

    def _apply(
        self,
        event: ChangeEvent,
        state: EntityState | None,
        rules: RuleSet,
        result: BatchResult,
        now: Any,
        position: tuple[int, int] | None = None,
    ) -> EntityState | None:
        """Apply one valid event; returns the new state, or ``None`` when nothing changed."""
        stats = result.stats
        state = {"f": {}, "ids": []} if state is None else dict(state)
        if position is not None and replayed(state, position):
            stats.replays += 1
            return None
        ids = list(state.get("ids", ()))
        if event.event_id in ids:
            stats.duplicates += 1
            return None
        if out_of_order(state, event.occurred_at.timestamp()):
            stats.out_of_order += 1  # policy: never merged over the newer state
            return None
        if position is not None:
            state["q"] = applied_at(position, now.timestamp())
        if self.dedup_window:
            ids.append(event.event_id)
            state["ids"] = ids[-self.dedup_window :]
        entity = event.entity  # StrEnum members are their str values (no ``.value`` lookup)
        stats.events[(entity, event.op, event.source)] += 1
        existed = bool(state.get("f")) or "c" in state
        before = state["f"] if existed else None
        last_seen, owner_before = state.get("u"), state.get("o")
        after, changed = merge_fields(before, event)
        ts = event.occurred_at.timestamp()
        state["f"] = after
        state["u"] = ts
        state.setdefault("c", ts)
        if event.owner_id:
            state["o"] = event.owner_id
        if event.op is Op.DELETE:
            state["x"] = True
        if state.get("a"):  # open episodes of deleted or retyped rules end on this touch
            result.alerts.extend(
                retire_record(state, rules, event.entity.value, event.entity_id, now)
            )
        if not changed:
            stats.no_change += 1
            return state
        tz = self.org.timezone_of(state.get("o"))
        change = Change(
            event=event, before=before, after=after, changed=changed, now=now, tz=tz,
            cel_names=rules.variables,
            first_seen=state.get("c"), last_seen=last_seen, owner_before=owner_before,
            owner=state.get("o"), position=position,
        )  # fmt: skip
        result.changes.append(change)
        # a snapshot read (ChangeEvent.snapshot) builds the state; no rule judges it
        create = before is None
        candidates = () if event.snapshot else rules.candidates(entity, changed, create=create)
        if not candidates and "r" not in state and "a" not in state:
            return state  # nothing to judge, no rule state to keep up to date
        rule_states, episodes = live_rule_state(state, rules)
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
                        record_outcome(rid, outcome, [], None, rule_states, episodes, result)
                    continue
                alerts, episode = step(compiled, change, outcome, episode)
            except Exception as exc:  # isolate: one rule never stops the others
                stats.rule_errors[rid] += 1
                if self._error_log.should_log(rid):
                    log.warning(
                        "rule %s raised on %s %s (%s: %s); isolated, other rules go on",
                        rid, event.entity.value, event.entity_id, type(exc).__name__, exc,
                    )  # fmt: skip
                continue
            record_outcome(rid, outcome, alerts, episode, rule_states, episodes, result)
        store_rule_state(state, rule_states, episodes, rules)
        return state


def record_outcome(
    rid: str,
    outcome: Outcome,
    alerts: list[AlertEvent],
    episode: dict[str, Any] | None,
    rule_states: dict[str, Any],
    episodes: dict[str, Any],
    result: BatchResult,
) -> None:
    """Fold one rule's outcome and episode step into a record's rule state and the batch."""
    if outcome.skip is not None:
        result.stats.skips[(rid, outcome.skip)] += 1
    if outcome.state is not None:
        rule_states[rid] = dict(outcome.state)
    if episode is None:
        episodes.pop(rid, None)
    else:
        episodes[rid] = episode
    result.alerts.extend(alerts)


def next_due(state: Mapping[str, Any]) -> float | None:
    """Earliest timer deadline of a record or KPI series: a rule's ``due`` (when no episode
    of that rule is open) or an open episode's next reminder."""
    episodes = state.get("a", {})
    if state.get("x") and episodes:
        return 0.0  # a deleted record: its open episodes resolve at the next timer scan
    dues = [
        float(rs["due"]) for rid, rs in state.get("r", {}).items()
        if isinstance(rs, Mapping) and rs.get("due") is not None and rid not in episodes
    ]  # fmt: skip
    dues.extend(float(ep["next"]) for ep in episodes.values() if ep.get("next") is not None)
    return min(dues, default=None)


def safe_next_due(state: Mapping[str, Any], key: bytes) -> float | None:
    """:func:`next_due`, or ``None`` (no timer, logged) for a state holding a bad deadline."""
    try:
        return next_due(state)
    except Exception as exc:
        if _due_log.should_log("next_due"):
            log.warning("record %r has an unreadable timer deadline (%s); no timer", key, exc)
        return None


_due_log = ThrottledLog()


def open_episodes(states: Mapping[bytes, bytes]) -> Counter[str]:
    """Count open alert episodes per rule over a state mapping (for the active-alerts gauge)."""
    counts: Counter[str] = Counter()
    for blob in states.values():
        state = decode_state(blob)
        if state:
            counts.update(state.get("a", {}).keys())
    return counts
