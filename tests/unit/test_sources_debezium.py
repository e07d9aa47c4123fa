"""Debezium change records (PostgreSQL with the schema envelope, MySQL without)."""

from __future__ import annotations

import copy

import orjson

from streams.contracts.events import EntityKind, Op
from streams.sources.base import SourceRefusalReason as R
from tests.unit.sourcekit import NOW, docs, lines, run, translator


def test_postgres_envelope_decodes_logical_types_and_ops() -> None:
    results = [run("crm-db", line) for line in lines("debezium-postgres.jsonl")]
    events = [e for r in results for e in r.events]
    assert [r.refusals for r in results] == [[]] * 5
    snap, create, update, delete = events
    assert snap.snapshot and snap.op is Op.CREATE and snap.entity_id == "1041"
    assert snap.fields["amount"] == 1200.5  # Decimal(12,2) from base64 bytes
    assert create.fields["close_date"] == "2026-04-01"  # io.debezium.time.Date
    assert create.fields["updated_at"] == "2026-03-02T09:14:00"  # MicroTimestamp
    assert create.entity is EntityKind.DEAL and create.owner_id == "rep-7"
    assert create.actor == "u-ann" and "updated_by" not in create.fields  # actor, dropped
    assert not create.snapshot
    assert update.op is Op.UPDATE and update.changed == ["stage"]
    assert update.fields["stage"] == "Qualification" and update.actor == "u-bob"
    assert delete.op is Op.DELETE and delete.entity_id == "1042" and delete.fields == {}
    assert create.occurred_at.isoformat() == "2026-03-02T09:14:00+00:00"  # source.ts_ms
    assert results[-1].skipped == 1 and not results[-1].events  # the tombstone line


def test_event_ids_come_from_the_source_position_and_are_stable() -> None:
    first = [
        e.event_id for line in lines("debezium-postgres.jsonl") for e in run("crm-db", line).events
    ]
    again = [
        e.event_id for line in lines("debezium-postgres.jsonl") for e in run("crm-db", line).events
    ]
    assert first == again and len(set(first)) == 4
    assert first[1] == "dbz:lsn24023128:crm.public.deals:1042:c"
    mysql = [
        e.event_id for line in lines("debezium-mysql.jsonl") for e in run("crm-db", line).events
    ]
    assert mysql == ["dbz:mysql-bin.000003:154:0:crm.deals:77:c",
                     "dbz:mysql-bin.000003:484:0:crm.deals:77:u"]  # fmt: skip


def test_mysql_without_envelope_diffs_the_full_before_image() -> None:
    create, update = (run("crm-db", line).events[0] for line in lines("debezium-mysql.jsonl"))
    assert create.fields["amount"] == "15000.00"  # decimal.handling.mode=string, as written
    assert update.changed == ["stage", "amount"]


def test_update_without_before_leaves_changed_to_the_engine() -> None:
    doc = docs("debezium-postgres.jsonl")[2]
    doc["payload"]["before"] = None  # REPLICA IDENTITY DEFAULT: no before image
    (event,) = run("crm-db", doc).events
    assert event.changed is None and event.fields["stage"] == "Qualification"


def test_tombstones_are_skipped_not_refused() -> None:
    t = translator("crm-db")
    for raw in (None, b"", b"null", b'{"schema": null, "payload": null}'):
        result = t.translate(raw, received_at=NOW)
        assert (result.skipped, result.events, result.refusals) == (1, [], []), raw


def test_refusals_name_their_reason() -> None:
    base = docs("debezium-mysql.jsonl")[0]

    def reason(change: dict) -> R:  # type: ignore[type-arg]
        doc = copy.deepcopy(base)
        doc.update(change)
        (refusal,) = run("crm-db", doc).refusals
        assert refusal.raw == orjson.dumps(doc)  # the original bytes travel with it
        return refusal.reason

    assert reason({"op": "t"}) is R.UNSUPPORTED_OPERATION
    assert reason({"op": "x"}) is R.INVALID_PAYLOAD
    assert reason({"source": {**base["source"], "table": "invoices"}}) is R.UNKNOWN_OBJECT
    assert reason({"after": {**base["after"], "id": None}}) is R.MISSING_ID
    assert reason({"after": None}) is R.MISSING_ID
    assert reason({"after": [1]}) is R.INVALID_PAYLOAD
    assert reason({"source": "mysql"}) is R.INVALID_PAYLOAD
    far = {**base["source"], "ts_ms": 4102444800000}  # 2100: beyond the allowed skew
    assert reason({"source": far}) is R.INVALID_EVENT
    assert run("crm-db", b"[1, 2]").refusals[0].reason is R.INVALID_PAYLOAD
    assert run("crm-db", b"{not json").refusals[0].reason is R.INVALID_JSON


def test_bad_decimal_bytes_are_refused_not_raised() -> None:
    doc = docs("debezium-postgres.jsonl")[1]
    doc["payload"]["after"]["amount"] = "***"
    (refusal,) = run("crm-db", doc).refusals
    assert refusal.reason is R.INVALID_PAYLOAD and "amount" in refusal.detail


def test_unchanged_toast_placeholders_are_left_out() -> None:
    doc = docs("debezium-mysql.jsonl")[1]
    doc["after"]["name"] = "__debezium_unavailable_value"
    (event,) = run("crm-db", doc).events
    assert "name" not in event.fields and event.fields["stage"] == "Negotiation"
    assert event.changed == ["stage", "amount"]
