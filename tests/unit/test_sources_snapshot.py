"""Snapshot reads (Debezium ``op: r``) build the record state without firing rules."""

from __future__ import annotations

import copy

import orjson

from streams.clock import ManualClock
from streams.decode import RawRecord
from streams.judge import Engine
from streams.judge.state import decode_dict, record_key
from streams.rules.loader import load_text
from streams.rules.ruleset import RuleSet
from tests.unit.sourcekit import NOW, docs, run

RULES = """
rules:
  - id: back
    type: transition
    field: stage
    change: backwards
    order: [Prospecting, Qualification, Engaging, Proposal, Negotiation, Won]
    message: "{subject.id} moved back"
  - id: any-deal
    type: condition
    condition: "deal.amount > 0.0"
    message: "{subject.id} has an amount"
"""


def engine() -> Engine:
    loaded = load_text(RULES)
    assert loaded.ok, loaded.problems
    return Engine(RuleSet.build(r.compiled for r in loaded.rules), clock=ManualClock(NOW))


def snapshot_rows(count: int) -> list[bytes]:
    """``count`` snapshot reads of the deals table, as the translator emits them."""
    base = docs("debezium-postgres.jsonl")[0]
    out = []
    for i in range(count):
        doc = copy.deepcopy(base)
        doc["payload"]["after"]["id"] = 5000 + i
        (event,) = run("crm-db", doc).events
        assert event.snapshot
        out.append(event.model_dump_json().encode())
    return out


def test_a_snapshot_of_1000_rows_fires_nothing_but_builds_state_and_kpi_changes() -> None:
    eng = engine()
    store: dict[bytes, bytes] = {}
    rows = snapshot_rows(1000)
    records = [RawRecord("crm.events", 0, i, None, row) for i, row in enumerate(rows)]
    result = eng.process(records, store.get)
    assert result.alerts == [] and result.dead == []
    assert len(result.changes) == 1000  # the KPI feed counts every snapshot row
    assert len(result.writes) == 1000
    for key, (_, blob) in result.writes.items():
        assert blob is not None
        store[key] = blob
    state = decode_dict(store[record_key("deal", "5007")])
    assert state is not None and state["f"]["stage"] == "Prospecting"


def test_the_same_rows_as_changes_do_fire() -> None:
    rows = [row.replace(b'"snapshot":true', b'"snapshot":false') for row in snapshot_rows(3)]
    result = engine().process([RawRecord("t", 0, i, None, r) for i, r in enumerate(rows)],
                              {}.get)  # fmt: skip
    assert sorted(a.rule_id for a in result.alerts) == ["any-deal"] * 3


def test_a_change_after_the_snapshot_is_judged_against_the_snapshot_state() -> None:
    eng = engine()
    store: dict[bytes, bytes] = {}
    pg = docs("debezium-postgres.jsonl")
    snap = copy.deepcopy(pg[0])
    snap["payload"]["after"].update({"id": 1042, "stage": "Proposal"})
    (read,) = run("crm-db", snap).events
    (moved,) = run("crm-db", pg[2]).events  # Proposal -> Qualification, same deal
    first = eng.process([RawRecord("t", 0, 0, None, read.model_dump_json().encode())], store.get)
    assert first.alerts == []
    for key, (_, blob) in first.writes.items():
        assert blob is not None
        store[key] = blob
    second = eng.process([RawRecord("t", 0, 1, None, moved.model_dump_json().encode())], store.get)
    fired = [a for a in second.alerts if a.rule_id == "back"]
    assert len(fired) == 1 and fired[0].subject.id == "1042"
    assert fired[0].evidence["old"] == "Proposal" and fired[0].evidence["new"] == "Qualification"


def test_snapshot_must_be_a_json_boolean() -> None:
    from streams.contracts.deadletter import DeadLetterReason
    from streams.decode import Refusal, decode_event

    base = {"event_id": "e", "source": "s", "entity": "deal", "entity_id": "1", "op": "create",
            "occurred_at": "2026-03-02T09:00:00Z"}  # fmt: skip
    for value in ("yes", "true", 1, None):
        raw = orjson.dumps({**base, "snapshot": value})
        refused = decode_event(RawRecord("t", 0, 0, None, raw), NOW)
        assert isinstance(refused, Refusal), value
        assert refused.reason is DeadLetterReason.INVALID_FIELD and refused.field == "snapshot"
    accepted = decode_event(
        RawRecord("t", 0, 0, None, orjson.dumps({**base, "snapshot": True})), NOW
    )
    assert not isinstance(accepted, Refusal) and accepted.snapshot
    plain = decode_event(RawRecord("t", 0, 0, None, orjson.dumps(base)), NOW)
    assert not isinstance(plain, Refusal) and not plain.snapshot
