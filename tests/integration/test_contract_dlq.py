"""The input contract through a real worker: hostile values are refused at decoding with the
documented reason and path, the worker goes on, and a good event after them alerts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tests.integration.conftest import WorkerFactory
from tests.integration.kafka_io import consume_until, produce, values

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(key: str, minutes: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "source": "test", "entity": "deal", "entity_id": key,
        "op": "update", "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "owner_id": "rep-001", "fields": {"stage": "Proposal"}, **overrides,
    }  # fmt: skip


def with_fields(key: str, fields_json: bytes) -> bytes:
    """An event whose ``fields`` is raw JSON text (for tokens orjson would not write)."""
    return orjson.dumps(event(key, fields={})).replace(b'"fields":{}', b'"fields":' + fields_json)


async def test_hostile_values_are_refused_with_their_reason_and_the_worker_goes_on(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory()
    s = worker.settings
    pid = worker.proc.pid if worker.proc else None
    hostile: dict[bytes, tuple[bytes | None, str, str | None]] = {
        b"nan": (with_fields("nan", b'{"amount": NaN}'), "invalid_json", None),
        b"1e30": (with_fields("1e30", b'{"amount": 1e30}'), "out_of_range", "fields.amount"),
        b"-1e308": (with_fields("-1e308", b'{"amount": -1e308}'), "out_of_range", "fields.amount"),
        b"1e18": (with_fields("1e18", b'{"amount": 1e18}'), "out_of_range", "fields.amount"),
        b"9999": (
            orjson.dumps(event("9999", occurred_at="9999-12-31T23:59:59-12:00")),
            "out_of_range", "occurred_at",
        ),
        b"2099": (
            orjson.dumps(event("2099", occurred_at="2099-01-01T00:00:00+00:00")),
            "out_of_range", "occurred_at",
        ),
        b"epoch": (orjson.dumps(event("epoch", occurred_at=1772442840)), "invalid_field",
                   "occurred_at"),
        b"huge": (orjson.dumps(event("huge", fields={"name": "x" * 900_000})), "too_large", None),
        b"deep": (with_fields("deep", b'{"d": ' + b"[" * 200 + b"]" * 200 + b"}"), "too_large",
                  None),
        b"blank": (orjson.dumps(event("   ")), "invalid_field", "entity_id"),
        b"tomb": (None, "empty_value", None),
    }  # fmt: skip
    good = [
        # a 21-digit id and a numeric owner are accepted as exact text; then a regression
        (b"D-7", with_fields("D-7", b'{"name": "Acme", "stage": "Negotiation", '
                                    b'"external_id": 123456789012345678901}')),
        (b"D-7", orjson.dumps(event("D-7", 1, owner_id=12345, fields={"stage": "Proposal"}))),
    ]  # fmt: skip
    await produce(
        s.bootstrap_servers,
        s.events_topic,
        [(key, value) for key, (value, _, _) in hostile.items()] + good,
    )
    dead = await consume_until(
        s.bootstrap_servers, s.dlq_topic, lambda r: len(r) >= len(hostile), 60
    )
    assert len(dead) == len(hostile), worker.log_tail()
    for record in dead:
        expected_value, reason, field = hostile[record.key]
        error = orjson.loads(dict(record.headers)["crm-pulse-error"])
        assert (error["reason"], error["field"]) == (reason, field), (record.key, error)
        assert dict(record.headers)["crm-pulse-reason"] == reason.encode()
        assert record.value == expected_value  # the original bytes, untouched
    alerts = await consume_until(
        s.bootstrap_servers,
        s.alerts_topic,
        lambda r: any(a["subject"]["id"] == "D-7" for a in values(r)),
        60,
    )
    (alert,) = [
        a for a in values(alerts)
        if a["subject"]["id"] == "D-7" and a["rule_id"] == "deal-stage-backwards"
    ]  # fmt: skip
    assert alert["owner_id"] == "12345" and alert["status"] == "FIRING"
    metrics = worker.http_text("/metrics")
    assert 'crm_pulse_invalid_events_total{reason="out_of_range"} 5.0' in metrics
    assert 'crm_pulse_invalid_events_total{reason="too_large"} 2.0' in metrics
    assert worker.proc is not None and worker.proc.poll() is None and worker.proc.pid == pid
