"""Event in, alert out, on a real broker: stage regression, dead letters, changelog recovery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.integration.conftest import WorkerFactory
from tests.integration.kafka_io import consume_until, event_bytes, produce, read_all, values

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def deal_event(deal_id: str, op: str, minutes: int, **fields: Any) -> tuple[bytes, bytes]:
    return event_bytes(
        event_id=str(uuid.uuid4()), source="test", entity="deal", entity_id=deal_id, op=op,
        occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(), owner_id="rep-001",
        fields=fields,
    )  # fmt: skip


STAGE_RULE = "deal-stage-backwards"  # the starter pack has other rules; these tests follow this one


def alerts_for(records: list[Any], deal_id: str) -> list[dict[str, Any]]:
    return [
        a for a in values(records) if a["subject"]["id"] == deal_id and a["rule_id"] == STAGE_RULE
    ]


async def test_stage_regression_produces_alert(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    s = worker.settings
    await produce(s.bootstrap_servers, s.events_topic, [
        deal_event("D-1", "create", 0, name="Acme renewal", stage="Prospecting", amount=1200.0),
        deal_event("D-1", "update", 1, stage="Engaging"),
        deal_event("D-1", "update", 2, stage="Negotiation"),
        deal_event("D-1", "update", 3, stage="Proposal"),  # backwards: fires
        deal_event("D-1", "update", 4, stage="Won"),
    ])  # fmt: skip
    records = await consume_until(
        s.bootstrap_servers,
        s.alerts_topic,
        lambda r: len(alerts_for(list(r), "D-1")) >= 1,
        timeout=30,
    )
    alerts = alerts_for(records, "D-1")
    assert len(alerts) == 1, worker.log_tail()
    alert = alerts[0]
    assert alert["rule_id"] == "deal-stage-backwards"
    assert alert["status"] == "FIRING"
    assert alert["schema_version"] == 1
    assert alert["evidence"]["old"] == "Negotiation"
    assert alert["evidence"]["new"] == "Proposal"
    assert alert["message"].startswith("Deal Acme renewal (D-1) moved back from Negotiation")
    assert all(r.key == orjson.loads(r.value)["alert_id"].encode() for r in records)


async def test_invalid_events_reach_dead_letter_topic_with_reason(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory()
    s = worker.settings
    malformed = b'{"event_id": "x", "entity": '
    missing = orjson.dumps({
        "event_id": "e-missing", "source": "test", "entity": "deal", "op": "update",
        "occurred_at": T0.isoformat(), "fields": {"stage": "Won"},
    })  # fmt: skip
    naive_time = orjson.dumps({
        "event_id": "e-naive", "source": "test", "entity": "deal", "entity_id": "D-9",
        "op": "update", "occurred_at": "2026-03-02T09:00:00", "fields": {},
    })  # fmt: skip
    await produce(s.bootstrap_servers, s.events_topic, [
        (b"k1", malformed), (b"k2", missing), (b"D-9", naive_time),
        deal_event("D-2", "create", 0, stage="Prospecting"),
    ])  # fmt: skip
    dead = await consume_until(s.bootstrap_servers, s.dlq_topic, lambda r: len(r) >= 3, 30)
    assert len(dead) == 3, worker.log_tail()
    by_key = {r.key: r for r in dead}
    assert by_key[b"k1"].value == malformed  # original bytes, untouched
    assert by_key[b"k2"].value == missing
    errors = {key: orjson.loads(dict(r.headers)["crm-pulse-error"]) for key, r in by_key.items()}
    assert errors[b"k1"]["reason"] == "invalid_json"
    assert errors[b"k2"]["reason"] == "missing_field"
    assert errors[b"k2"]["field"] == "entity_id"
    assert errors[b"D-9"]["field"] == "occurred_at"
    assert errors[b"k2"]["topic"] == s.events_topic
    # the valid event after them went through (nothing blocked the partition)
    metrics = worker.http_text("/metrics")
    assert 'crm_pulse_invalid_events_total{reason="invalid_json"} 1.0' in metrics
    assert 'crm_pulse_events_total{entity="deal",op="create",source="test"} 1.0' in metrics


async def test_state_survives_restart_and_crash_without_duplicate_alerts(
    worker_factory: WorkerFactory,
) -> None:
    first = worker_factory()
    s = first.settings
    await produce(s.bootstrap_servers, s.events_topic, [
        deal_event("D-3", "create", 0, name="Globex", stage="Engaging", amount=500.0),
        deal_event("D-3", "update", 1, stage="Negotiation"),
        deal_event("D-4", "create", 0, name="Initech", stage="Negotiation"),
        deal_event("D-4", "update", 1, stage="Engaging"),  # fires before the crash
    ])  # fmt: skip
    before = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: len(alerts_for(list(r), "D-4")) >= 1, 30
    )
    assert len(alerts_for(before, "D-4")) == 1, first.log_tail()
    # The state of D-3 (stage Negotiation) exists only in the table and its changelog now.
    first.kill()  # SIGKILL: no clean shutdown, no final commit
    second = worker_factory()  # same topics and group: recovers from the changelog
    await produce(s.bootstrap_servers, s.events_topic, [
        # a regression that spans the restart: Negotiation (before) -> Proposal (after)
        deal_event("D-3", "update", 2, stage="Proposal"),
    ])  # fmt: skip
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: len(alerts_for(r, "D-3")) >= 1, 45
    )
    d3 = alerts_for(records, "D-3")
    assert len(d3) == 1, second.log_tail()
    assert d3[0]["evidence"]["old"] == "Negotiation"
    everything = [
        a
        for a in values(await read_all(s.bootstrap_servers, s.alerts_topic, settle=2.0))
        if a["rule_id"] == STAGE_RULE
    ]
    # At-least-once: a SIGKILL between an alert and its state write replays the event.
    # The replay carries the same alert_id and sequence (the contract's dedup key) and
    # never opens a second episode.
    episodes = {(a["alert_id"], a["sequence"], a["status"]) for a in everything}
    assert len(episodes) == 2, everything
    assert {a["subject"]["id"] for a in everything} == {"D-3", "D-4"}
