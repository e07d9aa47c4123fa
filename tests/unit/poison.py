"""The poison pills of issue 12 as raw ChangeEvent bytes, and a pure pipeline that runs
them (engine with the starter rule pack, KPI facts check, in-memory state) and checks
every output against the size limits (shared by unit and integration tests)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.agents.kpi_facts import (
    FACTS_PER_CHANGE_BYTES,
    check_facts,
    encoded_by_scope,
    facts_records,
    read_facts,
)
from streams.clock import ManualClock
from streams.decode import DecodeLimits, RawRecord
from streams.judge import BatchResult, Engine
from streams.judge.state import STATE_MAX_BYTES
from streams.kpis.catalog import load_catalog
from streams.kpis.directory import OrgDirectory
from streams.kpis.facts import FactRules, facts_by_scope
from streams.kpis.skips import Skips
from streams.kpis.windows import day_of
from streams.outputs import alert_value, dead_letter_record, value_budget
from streams.produce import key_partitioner
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAX_MESSAGE_BYTES = 1_048_576


def change_event(
    n: int, entity_id: str, op: str = "update", *, entity: str = "deal",
    owner: Any = "rep-1", minutes: int = 0, start: datetime = T0, **fields: Any,
) -> bytes:  # fmt: skip
    """One ChangeEvent as JSON bytes (the standard json module: it writes big ints)."""
    body = {
        "event_id": f"ev-{n}", "source": "fuzz", "entity": entity, "entity_id": entity_id,
        "op": op, "occurred_at": (start + timedelta(minutes=minutes)).isoformat(),
        "fields": fields,
    }  # fmt: skip
    if owner is not None:
        body["owner_id"] = owner
    return json.dumps(body).encode()


def poison_pills(prefix: str = "P", start: datetime = T0) -> list[tuple[str, list[bytes]]]:
    """``(name, events)`` for every poison pill the issue names (valid JSON, one record)."""
    big = "x" * 900_000
    event = functools.partial(change_event, start=start)
    return [
        ("21-digit int", [event(1, f"{prefix}1", "create", stage="Prospecting",
                                external_id=123456789012345678901)]),
        ("amount 1e18", [event(2, f"{prefix}2", "create", stage="Prospecting", amount=1e18)]),
        ("amount 1e30", [event(3, f"{prefix}3", "create", stage="Prospecting", amount=1e30)]),
        ("amount -1e308", [event(4, f"{prefix}4", "create", stage="Prospecting",
                                 amount=-1e308)]),
        ("900k name then backwards", [
            event(5, f"{prefix}5", "create", stage="Negotiation", name=big),
            event(6, f"{prefix}5", stage="Qualification", minutes=1),
        ]),
        ("two 600 KB fields", [
            event(7, f"{prefix}6", "create", stage="Prospecting", notes="a" * 600_000),
            event(8, f"{prefix}6", description="b" * 600_000, minutes=1),
        ]),
        ("owner_id number", [event(9, f"{prefix}7", "create", owner=None, stage="Won",
                                   owner_id=12345)]),
        ("NaN", [event(10, f"{prefix}8", "create", stage="Prospecting")
                 .replace(b'"fields": {', b'"fields": {"amount": NaN, ')]),
        ("Infinity", [event(11, f"{prefix}9", "create", stage="Prospecting")
                      .replace(b'"fields": {', b'"fields": {"amount": -Infinity, ')]),
    ]  # fmt: skip


@functools.cache
def starter_rules() -> RuleSet:
    loaded = load_paths([REPO / "rules"])
    assert loaded.ok, [str(p) for p in loaded.problems]
    return RuleSet.build(r.compiled for r in loaded.rules)


@functools.cache
def _catalog() -> Any:
    return load_catalog(None)


@dataclass
class Pipeline:
    """The pure ingest path: engine (starter pack, KPI facts check) over an in-memory
    state, every output re-encoded and checked against the limits."""

    rules: RuleSet = field(default_factory=starter_rules)
    state: dict[bytes, bytes] = field(default_factory=dict)
    offset: int = 0
    accepted: int = 0
    duplicates: int = 0
    #: changes not applied by the replay policy: older than the record's state (out of
    #: order) or at or before its last applied input position (replayed)
    not_applied: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    alerts: list[Any] = field(default_factory=list)
    #: Input that passes the contract must never fail in a later stage; a test that
    #: provokes such a failure on purpose says so (a stale call in this harness once
    #: dead-lettered every valid record while the totals still added up).
    expect_processing_errors: bool = False

    def __post_init__(self) -> None:
        facts = FactRules(_catalog().params)
        self.facts = facts
        self.directory = OrgDirectory()
        self.skips = Skips()
        limits = DecodeLimits()  # the contract's defaults: the clock is T0, events near it
        # the latest KPI day counted, as the worker computes it: the clock plus the skew
        self.last_day = day_of(T0.timestamp() + limits.max_event_time_skew_s)
        self.engine = Engine(
            self.rules, clock=ManualClock(T0), limits=limits,
            change_checks=[("kpi_facts", lambda c: check_facts(
                c, facts, self.directory, self.last_day, self.skips))],
        )  # fmt: skip

    def send(self, *values: bytes | None) -> BatchResult:
        records = []
        for value in values:
            self.offset += 1
            records.append(RawRecord("crm.events", 0, self.offset, b"k", value))
        result = self.engine.process(records, self.state.get)
        self.check(result)
        self.state.update({k: blob for k, (_, blob) in result.writes.items()})
        stats = result.stats
        self.accepted += sum(stats.events.values())
        self.duplicates += stats.duplicates
        self.not_applied += stats.out_of_order + stats.replays
        for reason, n in stats.invalid.items():
            self.dead[reason] = self.dead.get(reason, 0) + n
        self.alerts.extend(result.alerts)
        return result

    def check(self, result: BatchResult) -> None:
        """Every output encodes, re-decodes and fits the broker's message limit."""
        if not self.expect_processing_errors:
            failed = [d.detail for _, d in result.dead if d.reason == "processing_error"]
            assert not failed, failed
        for key, (_, blob) in result.writes.items():
            assert len(blob) <= STATE_MAX_BYTES, (key[:50], len(blob))
            assert isinstance(orjson.loads(blob), dict)
        for alert in result.alerts:
            value, _ = alert_value(alert, MAX_MESSAGE_BYTES)
            assert len(value) <= value_budget(MAX_MESSAGE_BYTES, alert.alert_id.encode())
            assert len(alert.title) <= 1_000 and len(alert.message) <= 4_000
            assert "(none)" not in alert.title + alert.message
            assert orjson.loads(value)["alert_id"] == alert.alert_id
        for raw, dead in result.dead:
            value, headers, _ = dead_letter_record(raw.key, raw.value, dead, MAX_MESSAGE_BYTES)
            size = len(value or b"") + sum(len(k) + len(v) for k, v in headers)
            assert size <= value_budget(MAX_MESSAGE_BYTES, raw.key)
            assert orjson.loads(headers[0][1])["reason"] == dead.reason
        by_scope = facts_by_scope(
            result.changes, self.facts, self.directory, self.last_day, self.skips
        )
        for facts in by_scope.values():
            for fact in facts:
                assert len(orjson.dumps(fact)) <= FACTS_PER_CHANGE_BYTES
        shipped: dict[str, list[Any]] = {}
        for _, key, message in facts_records(encoded_by_scope(by_scope), key_partitioner(4), 1.0):
            assert len(message) <= value_budget(MAX_MESSAGE_BYTES, b"")
            scopes, _ = read_facts(key, message)
            assert scopes and all(facts for _, facts in scopes)
            for scope, facts in scopes:
                shipped.setdefault(scope, []).extend(facts)
        assert shipped == orjson.loads(orjson.dumps(by_scope))  # every fact, in order, once


STAGES = ["Prospecting", "Qualification", "Engaging", "Proposal", "Negotiation", "Won", "Lost"]


def _odd_value(rng: Any, depth: int = 0) -> Any:
    """A hostile but JSON-valid value: big or huge numbers, long or odd text, nesting."""
    pick = rng.randrange(14)
    if pick == 0:
        return rng.choice([123456789012345678901, -(10**30), 2**64, 10**300, 2**63 - 1])
    if pick == 1:
        return rng.choice([1e18, 1e30, -1e308, 1.7976931348623157e308, 5e-324, -0.0])
    if pick == 2:
        return "x" * rng.choice([0, 1, 1_000, 50_000])
    if pick == 3:
        return rng.choice(["", "   ", "\u0000\u202e\U0001f600", "{deal.name}", "[[x]]", "NaN"])
    if pick == 4 and depth < 40:
        return [_odd_value(rng, depth + 1)]
    if pick == 5 and depth < 40:
        return {"k": _odd_value(rng, depth + 1)}
    if pick == 6:
        return rng.choice([True, False, None])
    if pick == 7:
        return rng.choice(STAGES)
    if pick == 8:
        return rng.choice(["2026-03-02", "2026-13-45", "9999-12-31", "0001-01-01", 1772442840])
    return rng.choice([0, 1, -5, 4200, 420.5, 1e15, "1,200.50", "lots"])


def hostile_events(
    seed: int, count: int, ids: int = 12, start: datetime = T0
) -> list[tuple[bytes, bytes | None]]:
    """``count`` deterministic ``(key, value)`` input records: mostly valid ChangeEvents with
    hostile values in known fields (owner_id, amount, stage, close_date, name) and unknown
    ones, some invalid ones (not JSON, wrong types, empty) and some exact duplicates."""
    import random

    rng = random.Random(seed)
    out: list[tuple[bytes, bytes | None]] = []
    sent: list[tuple[bytes, bytes | None]] = []
    for n in range(count):
        entity_id = f"F{rng.randrange(ids)}"
        key = entity_id.encode()
        roll = rng.random()
        if roll < 0.04 and sent:
            out.append(rng.choice(sent))  # the same record again: a duplicate
            continue
        if roll < 0.10:
            value = rng.choice([b"{not json", b"[]", b"null", b'{"event_id": 5}', None, b""])
            out.append((key, value))
            continue
        fields: dict[str, Any] = {}
        for name in rng.sample(["owner_id", "amount", "stage", "close_date", "name",
                                "probability", "external_id", "next_step", "lost_reason",
                                "email", "phone", "status"], rng.randrange(1, 6)):  # fmt: skip
            fields[name] = _odd_value(rng) if rng.random() < 0.6 else rng.choice(STAGES)
        if "stage" in fields and rng.random() < 0.7:
            fields["stage"] = rng.choice(STAGES)
        body = {
            "event_id": f"fz-{seed}-{n}", "source": rng.choice(["fuzz", "crm"]),
            "entity": rng.choice(["deal", "deal", "deal", "lead", "activity", "task"]),
            "entity_id": entity_id, "op": rng.choice(["create", "update", "update", "delete"]),
            "occurred_at": (start + timedelta(minutes=n)).isoformat(),
            "owner_id": rng.choice(["rep-1", "rep-2", None]), "fields": fields,
        }  # fmt: skip
        record = (key, json.dumps(body).encode())
        sent.append(record)
        out.append(record)
    return out
