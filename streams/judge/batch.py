"""Batches through the judge: raw change records, due keys, KPI snapshots (pure apart from
the clock value and the read-only state lookup given).

Each returns one :class:`~streams.judge.result.BatchResult` that the agents ship the same
way: alerts and derived records acknowledged before the state writes that remember them.
States are decoded once per subject and batch, judged as typed states, and encoded once.

Every record of a change batch is isolated: whatever raises while one record is processed
(state decode, merge, rule state, alert building, a change check such as the KPI facts)
sends that record to the dead-letter topic with reason ``processing_error`` and a detail
naming the stage and the exception type; what it had produced is taken back, it is counted
(``stats.processing_errors``) and the batch goes on. One ``try`` per record: nothing is paid
on the path of a record that does not raise. A due key or KPI snapshot that cannot be judged
is counted and skipped the same way; a rule that raises is isolated by the judge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from streams.clock import Clock, utcnow, when_ingested
from streams.contracts.deadletter import DeadLetterReason
from streams.decode import (
    DEFAULT_LIMITS,
    DecodeLimits,
    RawRecord,
    Refusal,
    dead_letter,
    decode_event,
)
from streams.judge.logic import Judge, judged_at
from streams.judge.result import BatchResult, StateLookup, ThrottledLog, subject_failed
from streams.judge.state import STATE_MAX_BYTES, EntityState, record_key
from streams.org import OrgDirectory
from streams.rules.change import Change
from streams.rules.kpi_point import KpiPoint, decode_point
from streams.rules.ruleset import RuleSet

log = logging.getLogger("streams.judge")

#: A pure check of each accepted change (e.g. that its KPI facts can be built and encoded):
#: ``(stage name, check)``; a check that raises sends the record to the dead-letter topic,
#: what it returns is kept on the change under its stage name (``Change.derived``).
ChangeCheck = tuple[str, Callable[[Change], object]]
PROCESSING_ERROR = "processing_error"
KPI_PREFIX = b"kpi:"
#: Innermost function of a traceback -> the stage it belongs to (named in dead letters).
_STAGES = {
    "decode_event": "decode", "from_dict": "state_decode", "merge_fields": "merge",
    "retire_record": "retire", "_live": "rule_state", "_store": "rule_state",
    "step": "alert", "step_context": "alert", "change_context": "alert",
    "timezone_of": "org", "candidates": "rule_index",
}  # fmt: skip
_errors = ThrottledLog()


def stage_of(exc: BaseException, default: str) -> str:
    """The stage a record's failure belongs to, from the innermost known function."""
    stage = default
    tb = exc.__traceback__
    while tb is not None:
        stage = _STAGES.get(tb.tb_frame.f_code.co_name, stage)
        tb = tb.tb_next
    return stage


def safe_next_due(state: EntityState, key: bytes) -> float | None:
    """The state's next deadline, or ``None`` (no timer, logged) for a bad deadline."""
    try:
        return state.next_due()
    except Exception as exc:
        if _errors.should_log("next_due"):
            log.warning("record %r has an unreadable timer deadline (%s); no timer", key, exc)
        return None


def judge_changes(
    judge: Judge, records: Sequence[RawRecord], lookup: StateLookup, now: datetime, *,
    limits: DecodeLimits = DEFAULT_LIMITS, state_max_bytes: int = STATE_MAX_BYTES,
    checks: Sequence[ChangeCheck] = (),
) -> BatchResult:  # fmt: skip
    """Raw ``crm.events`` records through the judge: alerts, dead letters, state writes."""
    result = judge.out
    cache: dict[bytes, EntityState | None] = {}
    partitions: dict[bytes, int] = {}
    stats = result.stats
    alerts, changes, dead = result.alerts, result.changes, result.dead
    on_change = judge.on_change
    last_ms, at = None, now  # records of one producer batch share their timestamp
    for raw in records:
        marks = (len(alerts), len(changes), stats.no_change)
        stage = "decode"
        try:
            decoded = decode_event(raw, now, limits)
            if isinstance(decoded, Refusal):
                stats.invalid[decoded.reason] += 1
                dead.append((raw, dead_letter(raw, decoded, now)))
                continue
            counted = (decoded.entity, decoded.op, decoded.source)
            before = stats.events.get(counted, 0)  # taken back if the record fails
            key = record_key(decoded.entity, decoded.entity_id)  # a StrEnum is its value
            stage = "state_decode"
            if key in cache:
                state = cache[key]
            else:
                state = EntityState.decode(lookup(key))
                cache[key] = state
            stage = "apply"
            # the time a change is judged at is its record's (Kafka) timestamp: a replay
            # of the same input renders the same alerts, whenever it runs
            if raw.timestamp_ms != last_ms:
                last_ms = raw.timestamp_ms
                at = when_ingested(last_ms, now)
            new_state = on_change(decoded, state, at, (raw.partition, raw.offset))
            if checks and len(changes) > marks[1]:
                change = changes[-1]
                for stage, check in checks:
                    change.derived[stage] = check(change)
        except Exception as exc:  # isolate: one record never stops the batch
            if stage != "decode":
                stats.events[counted] = before
            _refuse(raw, stage_of(exc, stage), exc, result, now, marks)
            continue
        if new_state is not None:
            cache[key] = new_state
            partitions[key] = raw.partition
    for key, partition in partitions.items():
        final = cache[key]
        assert final is not None
        final.partition = partition  # the changelog partition, for timer writes
        result.writes[key] = (partition, final.encode(state_max_bytes))
        result.due[key] = safe_next_due(final, key)
    return result


def _refuse(
    raw: RawRecord, stage: str, exc: Exception, result: BatchResult, now: datetime,
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
    if _errors.should_log(f"stage:{stage}"):
        log.warning(
            "record at %s[%d]@%d failed in %s (%s); sent to the dead-letter topic",
            raw.topic, raw.partition, raw.offset, stage, type(exc).__name__,
        )  # fmt: skip


def judge_due(
    judge: Judge, keys: Sequence[bytes], lookup: StateLookup, now: datetime,
    partitions: Collection[int] | None = None, state_max_bytes: int = STATE_MAX_BYTES,
) -> BatchResult:  # fmt: skip
    """Judge again the records/series whose deadline came; returns alerts and writes.

    ``partitions``: the changelog partitions this worker owns; other keys are left alone
    (their new owner judges them). Each subject is judged at its deadline
    (:func:`~streams.judge.logic.judged_at`), not at the scan's time, so a timer alert
    replayed after a crash has the same content.
    """
    result = judge.out
    for key in keys:
        marks = len(result.alerts)
        try:
            state = EntityState.decode(lookup(key))
            if state is None or state.partition is None:
                continue
            partition = int(state.partition)
            if partitions is not None and partition not in partitions:
                continue
            at = judged_at(state, now)
            if key.startswith(KPI_PREFIX):
                judge.on_due_series(state, at)
            else:
                judge.on_due_record(key, state, at)
        except Exception as exc:  # an unreadable record never stops the timer loop
            del result.alerts[marks:]
            subject_failed(result.stats, "timer", exc, key.decode(errors="replace"))
            result.due[key] = None  # not judged again at every tick
            continue
        result.writes[key] = (partition, state.encode(state_max_bytes))
        due = safe_next_due(state, key)
        # a deadline already passed is judged at the next scan (at its own time)
        result.due[key] = due if due is not None and due > at.timestamp() else None
    return result


def series_key(point: KpiPoint) -> bytes:
    return KPI_PREFIX + point.series.encode()


def judge_points(
    judge: Judge, records: Sequence[RawRecord], lookup: StateLookup, now: datetime
) -> BatchResult:
    """``crm.kpis`` snapshots through the KPI rules watching them (state per series)."""
    result = judge.out
    if not judge.rules.has_kpi_rules:
        return result  # nothing watches a KPI: the snapshots are only acknowledged
    cache: dict[bytes, EntityState] = {}
    for raw in records:
        try:
            point = decode_point(raw.value, now)
            if isinstance(point, str):
                result.stats.invalid[f"kpi_{point}"] += 1
                continue
            candidates = judge.watching(point)
            if not candidates:
                continue
            key = series_key(point)
            state = cache.get(key)
            if state is None:
                state = EntityState.decode(lookup(key))
            # the cached state changes only once this snapshot went through
            cache[key] = judge.on_point(point, state, raw.partition, now, candidates)
        except Exception as exc:  # one unreadable snapshot or series never stops the agent
            subject_failed(
                result.stats, "kpi_rules", exc, f"{raw.topic}[{raw.partition}]@{raw.offset}"
            )
    for key, state in cache.items():
        result.writes[key] = (int(state.partition or 0), state.encode())
        result.due[key] = safe_next_due(state, key)
    return result


class Engine:
    """The change path as the worker runs it: one rule set (``rules`` may be swapped at any
    time, atomically: each batch is judged with the set it started with), the org
    directory, the decode limits, the state cap and the change checks."""

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

    def judge(self) -> Judge:
        """A judge of the live rules with a fresh batch result."""
        return Judge(self.rules, BatchResult(), org=self.org, dedup_window=self.dedup_window)

    def process(self, records: Sequence[RawRecord], lookup: StateLookup) -> BatchResult:
        return judge_changes(
            self.judge(), records, lookup, self.clock(), limits=self.limits,
            state_max_bytes=self.state_max_bytes, checks=self.change_checks,
        )  # fmt: skip
