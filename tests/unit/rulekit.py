"""Helpers of the rule unit tests: events as JSONL bytes, rules from YAML text."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.contracts.alerts import AlertEvent
from streams.decode import RawRecord
from streams.judge import BatchResult, Engine, Judge, judge_due, judge_points
from streams.judge.dryrun import run_events
from streams.judge.result import StateLookup
from streams.judge.state import decode_dict, record_key
from streams.org import OrgDirectory
from streams.rules.loader import load_text
from streams.rules.ruleset import RuleSet

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(entity_id: str, op: str, minutes: int = 0, entity: str = "deal",
          owner: str | None = "rep-1", **fields: Any) -> bytes:  # fmt: skip
    return orjson.dumps({
        "event_id": str(uuid.uuid4()), "source": "test", "entity": entity,
        "entity_id": entity_id, "op": op, "owner_id": owner,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(), "fields": fields,
    })  # fmt: skip


def ruleset(text: str) -> RuleSet:
    result = load_text(text, "test.yaml")
    assert result.ok, [str(p) for p in result.problems]
    return RuleSet.build(r.compiled for r in result.rules)


def fired(rules: RuleSet, *lines: bytes) -> list[AlertEvent]:
    return run_events(rules, lines, clock=ManualClock(T0)).alerts


def judge_timers(
    rules: RuleSet, keys: Sequence[bytes], lookup: StateLookup, now: datetime,
    org: OrgDirectory | None = None, partitions: Collection[int] | None = None,
) -> BatchResult:  # fmt: skip
    """Due records and KPI series through a judge of ``rules``, as the timer scan does."""
    return judge_due(Judge(rules, BatchResult(), org=org), keys, lookup, now, partitions)


def judge_kpis(
    rules: RuleSet, records: Sequence[RawRecord], lookup: StateLookup, now: datetime
) -> BatchResult:
    """``crm.kpis`` snapshots through a judge of ``rules``, as the KPI-rule agent does."""
    return judge_points(Judge(rules, BatchResult()), records, lookup, now)


def pairs(alerts: list[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(a.rule_id, a.subject.id, a.status.value) for a in alerts]


class EngineHarness:
    """One engine over an in-memory state: ``send`` events, read alerts as triples, the
    rule errors counted so far and a record's rule state."""

    def __init__(self, text: str) -> None:
        self.engine = Engine(ruleset(text), clock=ManualClock(T0))
        self.state: dict[bytes, bytes] = {}
        self.offset = 0
        self.errors: dict[str, int] = {}

    def send(self, *lines: bytes) -> list[tuple[str, str, str]]:
        records = []
        for line in lines:
            self.offset += 1
            records.append(RawRecord("t", 0, self.offset, b"k", line))
        result = self.engine.process(records, self.state.get)
        self.state.update({k: blob for k, (_, blob) in result.writes.items()})
        for rule, n in result.stats.rule_errors.items():
            self.errors[rule] = self.errors.get(rule, 0) + n
        return [(a.rule_id, a.subject.id, a.status.value) for a in result.alerts]

    def rule_state(self, deal: str) -> dict[str, object]:
        state = decode_dict(self.state[record_key("deal", deal)]) or {}
        return {k: state.get(k) for k in ("r", "a", "t")}
