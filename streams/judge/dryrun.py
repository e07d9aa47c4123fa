"""``crm-pulse rules test``: run rules over saved events offline, through the very code
the worker runs (:meth:`~streams.judge.batch.Engine.process`, and the per-owner counting of
``frequency`` rules), with in-memory state dicts instead of the Faust tables. Same events and
rules in, same alerts out, and the same rule errors counted."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from streams.clock import Clock, utcnow
from streams.contracts.alerts import AlertEvent
from streams.decode import DEFAULT_LIMITS, DecodeLimits, RawRecord
from streams.judge.batch import Engine
from streams.judge.owner import count_hits, owner_hits
from streams.judge.result import BatchResult
from streams.rules.ruleset import RuleSet


@dataclass
class DryRun:
    alerts: list[AlertEvent] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    events: int = 0
    rule_errors: dict[str, int] = field(default_factory=dict)


def _key(line: bytes) -> bytes | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    entity_id = data.get("entity_id") if isinstance(data, dict) else None
    return str(entity_id).encode() if entity_id is not None else None


def _owner_counts(
    rules: RuleSet, result: BatchResult, counts: dict[bytes, bytes], now: datetime,
    offsets: Iterator[int],
) -> list[BatchResult]:  # fmt: skip
    """``frequency`` rules counted per owner, as the worker does after its repartition
    (one partition here: its offsets keep growing from batch to batch)."""
    found = owner_hits(rules, result.changes)
    if not found.derived:
        return [found]
    records = [RawRecord("owners", 0, next(offsets), owner.encode(), value)
               for owner, value in found.derived]  # fmt: skip
    counted = count_hits(rules, records, counts.get, now)
    _store(counts, counted)
    return [found, counted]


def _store(table: dict[bytes, bytes], result: BatchResult) -> None:
    for key, (_, blob) in result.writes.items():
        if blob is None:
            table.pop(key, None)
        else:
            table[key] = blob


def run_events(
    rules: RuleSet,
    lines: Iterable[bytes],
    *,
    batch_max: int = 2000,
    dedup_window: int = 8,
    clock: Clock = utcnow,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> DryRun:
    """Feed JSONL lines (one ChangeEvent each; blank lines skipped) through the engine."""
    engine = Engine(rules, dedup_window=dedup_window, clock=clock, limits=limits)
    state: dict[bytes, bytes] = {}
    counts: dict[bytes, bytes] = {}  # frequency per owner: (rule, owner) -> count state
    offsets = itertools.count()  # of the per-owner hits, as on the internal topic
    out = DryRun()
    batch: list[RawRecord] = []

    def flush() -> None:
        result: BatchResult = engine.process(batch, state.get)
        _store(state, result)
        owners = _owner_counts(rules, result, counts, engine.clock(), offsets)
        for part in (result, *owners):
            out.alerts.extend(part.alerts)
            for rid, n in part.stats.rule_errors.items():
                out.rule_errors[rid] = out.rule_errors.get(rid, 0) + n
        for raw, dead in result.dead:
            out.refused.append((raw.offset, dead.reason, dead.detail))
        out.events += sum(result.stats.events.values())
        batch.clear()

    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        batch.append(RawRecord("file", 0, number, _key(line), line))
        if len(batch) >= batch_max:
            flush()
    if batch:
        flush()
    return out
