"""The poison pills of the hostile-input report through the pure engine and the KPI facts: the
contract refuses or normalises them, so the state and the facts always encode with orjson."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.decode import RawRecord
from streams.judge import Engine
from streams.kpis.catalog import default_catalog
from streams.kpis.directory import parse_directory
from streams.kpis.facts import FactRules, facts_by_scope
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(offset: int, key: str, fields: str, **top: Any) -> RawRecord:
    event = {
        "event_id": f"e-{offset}", "source": "crm", "entity": "deal", "entity_id": key,
        "op": "update", "occurred_at": "2026-03-02T08:00:00+00:00", "owner_id": "rep-7",
        "fields": {}, **top,
    }  # fmt: skip
    value = orjson.dumps(event).replace(b'"fields":{}', b'"fields":' + fields.encode())
    return RawRecord("crm.events", 0, offset, key.encode(), value)


def test_poison_pills_never_reach_the_state_or_the_facts_unbounded() -> None:
    rules = RuleSet.build(r.compiled for r in load_paths([REPO / "rules"]).rules)
    engine = Engine(rules, clock=ManualClock(NOW))
    records = [
        record(0, "D-big-id", '{"stage": "Prospecting", "external_id": 123456789012345678901}'),
        record(1, "D-1e18", '{"stage": "Prospecting", "amount": 1e18}'),
        record(2, "D-1e30", '{"stage": "Prospecting", "amount": 1e30}'),
        record(3, "D-neg", '{"stage": "Prospecting", "amount": -1e308}'),
        record(4, "D-nan", '{"stage": "Prospecting", "amount": NaN}'),
        record(5, "D-owner", '{"stage": "Negotiation", "owner_id": 12345, "name": "Acme"}'),
        record(6, "D-owner", '{"stage": "Proposal"}', owner_id=12345),  # backwards: an alert
        record(7, "D-9999", '{"stage": "Won"}', occurred_at="9999-12-31T23:59:59-12:00"),
        record(8, "D-2099", '{"stage": "Won"}', occurred_at="2099-01-01T00:00:00+00:00"),
        record(9, "D-max", '{"stage": "Prospecting", "amount": 1e15}'),
    ]
    result = engine.process(records, {}.get)
    dead = {raw.key: (d.reason, d.field) for raw, d in result.dead}
    assert dead == {
        b"D-1e18": ("out_of_range", "fields.amount"),
        b"D-1e30": ("out_of_range", "fields.amount"),
        b"D-neg": ("out_of_range", "fields.amount"),
        b"D-nan": ("invalid_json", None),
        b"D-9999": ("out_of_range", "occurred_at"),
        b"D-2099": ("out_of_range", "occurred_at"),
    }
    assert sorted(result.writes) == [b"deal:D-big-id", b"deal:D-max", b"deal:D-owner"]
    for _, blob in result.writes.values():
        orjson.loads(blob)  # written by orjson, read back
    big = orjson.loads(result.writes[b"deal:D-big-id"][1])
    assert big["f"]["external_id"] == "123456789012345678901"
    (alert,) = [a for a in result.alerts if a.rule_id == "deal-stage-backwards"]
    assert alert.owner_id == "12345"  # a numeric owner no longer drops the alert
    catalog = default_catalog()
    facts = facts_by_scope(
        result.changes,
        FactRules(catalog.params),
        parse_directory("owner,team,region\nrep-7,west,West\n"),
    )
    assert facts and orjson.dumps(facts)  # 1e15 is the largest amount: cents fit 64 bits
