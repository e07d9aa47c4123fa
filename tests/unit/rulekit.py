"""Helpers of the rule unit tests: events as JSONL bytes, rules from YAML text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.contracts.alerts import AlertEvent
from streams.rules.dryrun import run_events
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


def pairs(alerts: list[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(a.rule_id, a.subject.id, a.status.value) for a in alerts]
