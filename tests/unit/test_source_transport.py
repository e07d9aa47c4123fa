"""The sources' transport logic without a broker: what a translation becomes on Kafka
(events keyed by entity id, dead letters with the original bytes and the source, gap
alerts), record links on alerts, and the shipper's rule: the input is acked only after
every record of it is acknowledged."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.alerting.source_alerts import GAP_RULE_ID, RecordLinks, gap_alert
from streams.contracts.alerts import AlertEvent, AlertLink, AlertStatus, Severity, Subject
from streams.contracts.deadletter import DeadLetter
from streams.contracts.events import ChangeEvent
from streams.decode import RawRecord, decode_event
from streams.runtime.source_shipper import (
    Destinations,
    Origin,
    OutRecord,
    SourceShipper,
    ship_now,
    translation_records,
)
from streams.sources import build_translator, parse_sources

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
WHERE = Destinations("crm.events", "crm.events.dlq", "crm.alerts", 1_048_576)
SOURCES = parse_sources(
    """
sources:
  - id: sf
    type: salesforce_cdc
    transport: {kind: topic, topics: [sf.cdc]}
    mapping:
      include: salesforce.yaml
      objects:
        Opportunity:
          entity: deal
          owner_field: OwnerId
          rename: {StageName: stage, OwnerId: owner_id, Amount: amount}
          record_url: https://acme.lightning.force.com/lightning/r/Opportunity/{id}/view
""",
    "sources.yaml",
    REPO / "sources",
)
TRANSLATOR = build_translator(SOURCES.sources[0])
LINKS = RecordLinks.build(SOURCES.sources)


def cdc(change_type: str, ids: list[str], **fields: Any) -> bytes:
    header = {
        "entityName": "Opportunity", "recordIds": ids, "changeType": change_type,
        "changedFields": sorted(fields), "commitTimestamp": 1772442840000,
        "commitUser": "005xx0000012AbC", "transactionKey": "0002a1b2-c3d4", "sequenceNumber": 1,
    }  # fmt: skip
    return orjson.dumps({"ChangeEventHeader": header, **fields})


def test_events_are_keyed_by_entity_id_and_decode_back_to_the_same_event() -> None:
    raw = cdc("UPDATE", ["006A", "006B"], StageName="Qualification")
    translation = TRANSLATOR.translate(raw, received_at=NOW)
    records, alerts = translation_records(translation, Origin("sf.cdc", 0, 7), "sf", WHERE, NOW)
    assert not alerts
    assert [(r.kind, r.topic, r.key) for r in records] == [
        ("event", "crm.events", b"006A"), ("event", "crm.events", b"006B"),
    ]  # fmt: skip
    for record, event in zip(records, translation.events, strict=True):
        assert record.value is not None
        decoded = decode_event(RawRecord("crm.events", 0, 0, record.key, record.value), NOW)
        assert isinstance(decoded, ChangeEvent)
        assert decoded == event
        assert decoded.source == "sf" and decoded.fields == {"stage": "Qualification"}


def test_a_refusal_is_dead_lettered_with_its_original_bytes_key_and_source() -> None:
    raw = b'{"ChangeEventHeader": {"entityName": "Opportunity"'  # cut: not JSON
    translation = TRANSLATOR.translate(raw, received_at=NOW)
    origin = Origin("sf.cdc", 1, 42, b"the-key")
    records, _ = translation_records(translation, origin, "sf", WHERE, NOW)
    [record] = records
    assert (record.kind, record.topic, record.key, record.value) == (
        "dead_letter", "crm.events.dlq", b"the-key", raw,
    )  # fmt: skip
    headers = dict(record.headers or [])
    dead = DeadLetter.model_validate_json(headers["crm-pulse-error"])
    assert (dead.topic, dead.partition, dead.offset, dead.adapter) == ("sf.cdc", 1, 42, "kafka")
    assert dead.source == "sf" and dead.source_reason == "invalid_json"
    assert headers["crm-pulse-reason"] == b"invalid_json"
    assert headers["crm-pulse-source"] == b"sf"


def test_a_gap_becomes_one_data_quality_alert_naming_object_and_ids() -> None:
    translation = TRANSLATOR.translate(cdc("GAP_UPDATE", ["006A", "006B"]), received_at=NOW)
    records, alerts = translation_records(translation, Origin("sf.cdc"), "sf", WHERE, NOW)
    assert records == []  # a gap is never read as data
    [alert] = alerts
    assert alert.rule_id == GAP_RULE_ID and alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.WARNING
    assert alert.subject.entity == "deal"
    assert alert.evidence["crm_object"] == "Opportunity"
    assert alert.evidence["entity_ids"] == ["006A", "006B"]
    assert alert.evidence["change_type"] == "GAP_UPDATE"
    assert "Opportunity" in alert.title and "re-sync" in alert.title
    again, _ = TRANSLATOR.translate(cdc("GAP_UPDATE", ["006A", "006B"]), received_at=NOW), None
    _, alerts_again = translation_records(again, Origin("sf.cdc"), "sf", WHERE, NOW)
    assert alerts_again[0].model_dump_json() == alert.model_dump_json()  # a redelivery: same


def test_a_gap_on_one_record_links_to_it() -> None:
    translation = TRANSLATOR.translate(cdc("GAP_CREATE", ["006A"]), received_at=NOW)
    _, [alert] = translation_records(translation, Origin("sf.cdc"), "sf", WHERE, NOW, LINKS)
    assert alert.subject.id == "006A"
    assert [link.url for link in alert.links] == [
        "https://acme.lightning.force.com/lightning/r/Opportunity/006A/view"
    ]


def alert_about(kind: str, entity: str | None, record_id: str) -> AlertEvent:
    return AlertEvent(
        alert_id="a1", status=AlertStatus.FIRING, rule_id="deal-stage-backwards",
        rule_version=1, severity=Severity.WARNING,
        subject=Subject(kind=kind, entity=entity, id=record_id),  # type: ignore[arg-type]
        title="t", message="m", fired_at=NOW,
    )  # fmt: skip


def test_alerts_about_a_record_get_its_link_others_do_not() -> None:
    deal, kpi, lead = (
        alert_about("entity", "deal", "006/x y"), alert_about("kpi", None, "win_rate"),
        alert_about("entity", "lead", "00Q1"),
    )  # fmt: skip
    linked, kpi_after, lead_after = LINKS.apply([deal, kpi, lead])
    assert linked.links == [
        AlertLink(
            rel="record", title="sf",
            url="https://acme.lightning.force.com/lightning/r/Opportunity/006%2Fx%20y/view",
        )
    ]  # fmt: skip
    assert json.loads(linked.model_dump_json())["links"][0]["rel"] == "record"
    assert kpi_after is kpi
    # the included starter mapping's Lead has a URL template too
    assert lead_after.links[0].url.endswith("/lightning/r/Lead/00Q1/view")
    assert RecordLinks().apply([deal]) == [deal]


def test_links_are_bounded_and_never_refuse_an_alert() -> None:
    bad = [{"url": "javascript:alert(1)"}, {"url": "https://x/" + "a" * 3000}]
    good = [{"url": f"https://crm.example.com/{i}"} for i in range(20)]
    alert = alert_about("entity", "deal", "D-1").model_copy()
    checked = AlertEvent.model_validate({**alert.model_dump(), "links": bad + good})
    assert len(checked.links) == 10
    assert all(link.url.startswith("https://crm.example.com/") for link in checked.links)


def test_gap_alert_without_ids_names_every_record_of_the_object() -> None:
    translation = TRANSLATOR.translate(cdc("GAP_OVERFLOW", []), received_at=NOW)
    [gap] = translation.gaps
    alert = gap_alert(gap, NOW)
    assert alert.subject.id == "Opportunity"
    assert "every Opportunity record" in alert.title


class FakeProducer:
    """Futures resolved by the test: the broker's acknowledgements."""

    def __init__(self) -> None:
        self.sent: list[OutRecord] = []
        self.futures: list[asyncio.Future[object]] = []

    async def send(self, record: OutRecord) -> asyncio.Future[object]:
        self.sent.append(record)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def records(n: int) -> list[OutRecord]:
    return [OutRecord("event", "crm.events", f"k{i}".encode(), b"{}") for i in range(n)]


async def test_shipper_acks_the_input_only_after_every_record_is_acknowledged() -> None:
    producer = FakeProducer()
    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    shipper = SourceShipper(producer.send, crash)
    acked: list[str] = []
    await shipper.put(records(3), lambda: acked.append("batch-1"))
    await asyncio.sleep(0.01)
    assert len(producer.sent) == 3 and acked == []
    producer.futures[0].set_result(None)
    producer.futures[1].set_result(None)
    await asyncio.sleep(0.01)
    assert acked == []  # one record still unacknowledged
    producer.futures[2].set_result(None)
    await asyncio.sleep(0.01)
    assert acked == ["batch-1"] and not crashes


async def test_shipper_never_acks_what_the_broker_refused_and_stops_the_worker() -> None:
    producer = FakeProducer()
    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    shipper = SourceShipper(producer.send, crash)
    acked: list[str] = []
    await shipper.put(records(2), lambda: acked.append("batch"))
    await asyncio.sleep(0.01)
    producer.futures[0].set_result(None)
    producer.futures[1].set_exception(RuntimeError("not leader"))
    await asyncio.sleep(0.01)
    assert acked == [] and len(crashes) == 1
    with pytest.raises(RuntimeError):
        await shipper.put(records(1), lambda: acked.append("next"))


async def test_ship_now_times_out_when_the_broker_does_not_acknowledge() -> None:
    producer = FakeProducer()
    with pytest.raises(TimeoutError):
        await ship_now(producer.send, records(2), timeout=0.05)
    producer2 = FakeProducer()
    task = asyncio.ensure_future(ship_now(producer2.send, records(2), timeout=5))
    await asyncio.sleep(0.01)
    for future in producer2.futures:
        future.set_result(None)
    await task


def test_an_input_whose_output_cannot_be_built_is_dead_lettered_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One input whose records fail to build (a defect on an odd payload) becomes a dead
    letter of its own; the inputs around it are written as usual."""
    from types import SimpleNamespace

    from streams.agents import sources as agent
    from streams.metrics import Metrics
    from streams.org import OrgDirectory
    from streams.runtime.alerting import AlertingRuntime
    from streams.settings import Settings

    real = agent.translation_records
    calls = {"n": 0}

    def second_fails(translation: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OverflowError("an odd value")
        return real(translation, *args, **kwargs)

    monkeypatch.setattr(agent, "translation_records", second_fails)
    pulse = SimpleNamespace(
        engine=SimpleNamespace(clock=lambda: NOW), metrics=Metrics(),
        alerting=AlertingRuntime.from_settings(Settings(), OrgDirectory()),
    )  # fmt: skip
    rt = SimpleNamespace(where=WHERE, links=LINKS)
    raw = cdc("UPDATE", ["006A"], StageName="Closed Won")
    messages = [SimpleNamespace(topic="sf", partition=0, offset=o, key=b"k", value=raw)
                for o in range(3)]  # fmt: skip
    out = agent.translate_messages(pulse, rt, TRANSLATOR, messages)  # type: ignore[arg-type]
    kinds = [r.kind for r in out]
    assert kinds.count("dead_letter") == 1 and kinds.count("event") == 2, kinds
    dead = next(r for r in out if r.kind == "dead_letter")
    assert dead.value == raw  # the input's original bytes
    letter = DeadLetter.model_validate_json(dict(dead.headers or [])["crm-pulse-error"])
    assert letter.reason.value == "processing_error" and letter.offset == 1
    assert letter.source_reason == "translator_error" and "OverflowError" in letter.detail
