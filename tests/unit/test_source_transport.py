"""The sources' transport logic without a broker: what a translation becomes on Kafka
(events keyed by entity id, dead letters with the original bytes and the source, gap
alerts), record links on alerts, and the one shipper's rule for the sources: the input is
acked (or the HTTP request answered) only after every record of it is acknowledged."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.agents import sources as agent
from streams.agents.sources import Origin, SourceOutput, ship_request, translation_output
from streams.alerting.source_alerts import GAP_RULE_ID, RecordLinks, gap_alert
from streams.api.sources import acknowledged_answer
from streams.contracts.alerts import AlertEvent, AlertLink, AlertStatus, Severity, Subject
from streams.contracts.deadletter import DeadLetter
from streams.contracts.events import ChangeEvent
from streams.decode import RawRecord, decode_event
from streams.metrics import Metrics
from streams.org import OrgDirectory
from streams.outputs import dead_letter_record
from streams.runtime.alerting import AlertingRuntime
from streams.runtime.shipper import Shipper
from streams.settings import Settings
from streams.sources import build_translator, parse_sources
from tests.unit.shipkit import CrashRecordingApp

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
EVENTS = "crm.events"
LIMIT = 1_048_576
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
    out = translation_output(translation, Origin("sf.cdc", 0, 7), "sf", EVENTS, NOW)
    assert not out.result.alerts and not out.result.dead
    assert [(r.topic, r.key) for r in out.events] == [
        ("crm.events", b"006A"), ("crm.events", b"006B"),
    ]  # fmt: skip
    for record, event in zip(out.events, translation.events, strict=True):
        decoded = decode_event(RawRecord("crm.events", 0, 0, record.key, record.value), NOW)
        assert isinstance(decoded, ChangeEvent)
        assert decoded == event
        assert decoded.source == "sf" and decoded.fields == {"stage": "Qualification"}


def test_a_refusal_is_dead_lettered_with_its_original_bytes_key_and_source() -> None:
    raw = b'{"ChangeEventHeader": {"entityName": "Opportunity"'  # cut: not JSON
    translation = TRANSLATOR.translate(raw, received_at=NOW)
    origin = Origin("sf.cdc", 1, 42, b"the-key")
    out = translation_output(translation, origin, "sf", EVENTS, NOW)
    assert out.events == [] and out.result.alerts == []
    [(record, letter)] = out.result.dead
    assert (record.key, record.value) == (b"the-key", raw)
    # what the shipper writes to the dead-letter topic: the original bytes and key
    value, header_list, cut = dead_letter_record(record.key, record.value, letter, LIMIT)
    assert value == raw and not cut
    headers = dict(header_list)
    dead = DeadLetter.model_validate_json(headers["crm-pulse-error"])
    assert (dead.topic, dead.partition, dead.offset, dead.adapter) == ("sf.cdc", 1, 42, "kafka")
    assert dead.source == "sf" and dead.source_reason == "invalid_json"
    assert headers["crm-pulse-reason"] == b"invalid_json"
    assert headers["crm-pulse-source"] == b"sf"


def test_a_gap_becomes_one_data_quality_alert_naming_object_and_ids() -> None:
    translation = TRANSLATOR.translate(cdc("GAP_UPDATE", ["006A", "006B"]), received_at=NOW)
    out = translation_output(translation, Origin("sf.cdc"), "sf", EVENTS, NOW)
    assert out.events == [] and out.result.dead == []  # a gap is never read as data
    [alert] = out.result.alerts
    assert alert.rule_id == GAP_RULE_ID and alert.status is AlertStatus.FIRING
    assert alert.severity is Severity.WARNING
    assert alert.subject.entity == "deal"
    assert alert.evidence["crm_object"] == "Opportunity"
    assert alert.evidence["entity_ids"] == ["006A", "006B"]
    assert alert.evidence["change_type"] == "GAP_UPDATE"
    assert "Opportunity" in alert.title and "re-sync" in alert.title
    again, _ = TRANSLATOR.translate(cdc("GAP_UPDATE", ["006A", "006B"]), received_at=NOW), None
    alerts_again = translation_output(again, Origin("sf.cdc"), "sf", EVENTS, NOW).result.alerts
    assert alerts_again[0].model_dump_json() == alert.model_dump_json()  # a redelivery: same


def test_a_gap_on_one_record_links_to_it() -> None:
    translation = TRANSLATOR.translate(cdc("GAP_CREATE", ["006A"]), received_at=NOW)
    out = translation_output(translation, Origin("sf.cdc"), "sf", EVENTS, NOW, LINKS)
    [alert] = out.result.alerts
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
    """The app's producer: records what is sent, in order; acknowledges when told."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self.futures: list[asyncio.Future[None]] = []

    async def send(self, topic: str, key: Any, value: Any, *args: Any) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, args[-1] if args else None))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    def ack_all(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)


def the_shipper(**settings: Any) -> tuple[Shipper, FakeProducer, list[BaseException]]:
    """The worker's one shipper over a fake producer (what the source agents hand it)."""
    producer = FakeProducer()
    app = CrashRecordingApp(producer)
    crashed = app.crashed

    config = Settings(**settings)
    shipper = Shipper(
        app=app, settings=config, metrics=Metrics(),
        alerting=AlertingRuntime.from_settings(config, OrgDirectory()),
        entity_table=SimpleNamespace(data={}), clock=lambda: NOW, change_hooks=[],
    )  # fmt: skip
    shipper._entity_changelog = "entity-changelog"
    shipper.links = LINKS
    return shipper, producer, crashed


def output_of(*payloads: bytes) -> SourceOutput:
    out = SourceOutput()
    for offset, raw in enumerate(payloads):
        translation = TRANSLATOR.translate(raw, received_at=NOW)
        origin = Origin("sf.cdc", 0, offset, b"in-key")
        out.extend(translation_output(translation, origin, "sf", EVENTS, NOW, LINKS))
    return out


async def test_the_shipper_acks_a_source_batch_only_after_every_record_is_acknowledged() -> None:
    shipper, producer, crashed = the_shipper()
    out = output_of(
        cdc("UPDATE", ["006A", "006B"], StageName="Qualification"),
        b"{not json",
        cdc("GAP_UPDATE", ["006C"]),
        cdc("UPDATE", ["006D"], StageName="Closed Won"),
    )
    acked: list[str] = []
    await shipper.put(out.result, lambda: acked.append("batch"), 0.0, records=out.events)
    for _ in range(20):
        await asyncio.sleep(0)
    s = shipper.settings
    # the gated, linked gap alert first, then the dead letter, then the events in input order
    assert [(topic, key) for topic, key, _, _ in producer.sent] == [
        (s.alerts_topic, out.result.alerts[0].alert_id.encode()), (s.dlq_topic, b"in-key"),
        (s.events_topic, b"006A"), (s.events_topic, b"006B"), (s.events_topic, b"006D"),
    ]  # fmt: skip
    assert dict(producer.sent[1][3])["crm-pulse-source"] == b"sf"
    gap = AlertEvent.model_validate_json(producer.sent[0][2] or b"")
    assert gap.rule_id == GAP_RULE_ID and len(gap.links) == 1  # its own link, not doubled
    for future in producer.futures[:-1]:
        future.set_result(None)
    for _ in range(20):
        await asyncio.sleep(0)
    assert acked == []  # one record still unacknowledged: the input is not acked
    producer.futures[-1].set_result(None)
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert acked == ["batch"] and not crashed
    registry = shipper.metrics.registry
    assert registry.get_sample_value("crm_pulse_produced_total", {"kind": "event"}) == 3
    assert registry.get_sample_value("crm_pulse_produced_total", {"kind": "dead_letter"}) == 1


async def test_the_shipper_never_acks_a_source_batch_the_broker_refused_and_stops() -> None:
    shipper, producer, crashed = the_shipper()
    out = output_of(cdc("UPDATE", ["006A", "006B"], StageName="Qualification"))
    acked: list[str] = []
    await shipper.put(out.result, lambda: acked.append("batch"), 0.0, records=out.events)
    for _ in range(20):
        await asyncio.sleep(0)
    producer.futures[0].set_result(None)
    producer.futures[1].set_exception(RuntimeError("not leader"))
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert acked == [] and [str(e) for e in crashed] == ["not leader"]
    with pytest.raises(RuntimeError, match="not leader"):  # the next writer hears of it
        await shipper.put(out.result, lambda: acked.append("next"), 0.0, records=out.events)


async def test_an_http_request_returns_once_acknowledged_or_times_out_harmlessly() -> None:
    shipper, producer, crashed = the_shipper()
    pulse = SimpleNamespace(shipper=shipper)
    out = output_of(cdc("UPDATE", ["006A"], StageName="Qualification"))
    with pytest.raises(TimeoutError):  # the broker is silent: the endpoint answers 503
        await asyncio.wait_for(ship_request(pulse, out), 0.05)  # type: ignore[arg-type]
    producer.ack_all()  # it answers after the request gave up: shipped, nothing breaks
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert not crashed and shipper.failure() is None
    task = asyncio.ensure_future(ship_request(pulse, out))  # type: ignore[arg-type]
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()  # waits for the broker
    producer.ack_all()
    await asyncio.wait_for(task, timeout=2)
    assert [key for _, key, _, _ in producer.sent] == [b"006A", b"006A"]  # the retry's ids


def a_pulse() -> Any:
    return SimpleNamespace(
        engine=SimpleNamespace(clock=lambda: NOW), metrics=Metrics(), settings=Settings()
    )


def output_fails_once(monkeypatch: pytest.MonkeyPatch, which: int) -> None:
    """The ``which``-th output build raises (a defect on an odd payload)."""
    real = agent.translation_output
    calls = {"n": 0}

    def failing(translation: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == which:
            raise OverflowError("an odd value")
        return real(translation, *args, **kwargs)

    monkeypatch.setattr(agent, "translation_output", failing)


def test_an_input_whose_output_cannot_be_built_is_dead_lettered_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One input whose records fail to build becomes a dead letter of its own; the inputs
    around it are written as usual."""
    output_fails_once(monkeypatch, 2)
    rt = SimpleNamespace(links=LINKS)
    raw = cdc("UPDATE", ["006A"], StageName="Closed Won")
    messages = [SimpleNamespace(topic="sf", partition=0, offset=o, key=b"k", value=raw)
                for o in range(3)]  # fmt: skip
    out = agent.translate_messages(a_pulse(), rt, TRANSLATOR, messages)  # type: ignore[arg-type]
    assert len(out.events) == 2
    [(record, letter)] = out.result.dead
    assert record.value == raw and record.key == b"k"  # the input's original bytes and key
    assert letter.reason.value == "processing_error" and letter.offset == 1
    assert letter.source_reason == "translator_error" and "OverflowError" in letter.detail


def test_an_http_body_whose_output_cannot_be_built_is_dead_lettered_and_answered_422(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output_fails_once(monkeypatch, 1)
    pulse = a_pulse()
    raw = cdc("UPDATE", ["006A"], StageName="Closed Won")
    translation, out = agent.translate_request(pulse, SimpleNamespace(links=LINKS), TRANSLATOR, raw)
    assert out.events == []
    [(record, letter)] = out.result.dead
    assert record.value == raw and letter.adapter == "http" and letter.partition == -1
    assert letter.topic == "POST /sources/sf" and letter.source_reason == "translator_error"
    body, status = acknowledged_answer(translation)
    assert status == 422 and body["reason"] == "translator_error" and body["events"] == 0
    refused = pulse.metrics.registry.get_sample_value(
        "crm_pulse_source_records_total", {"source": "sf", "result": "refused"}
    )
    assert refused == 1  # counted once, as refused (the failed translation is not counted)


def test_http_answers_200_400_and_422_from_what_was_translated() -> None:
    ok = TRANSLATOR.translate(cdc("UPDATE", ["006A"], StageName="Won"), received_at=NOW)
    assert acknowledged_answer(ok) == (
        {"events": 1, "refused": 0, "gaps": 0, "skipped": 0}, 200
    )  # fmt: skip
    unreadable = TRANSLATOR.translate(b"{not json", received_at=NOW)
    assert acknowledged_answer(unreadable)[1] == 400
    shape = TRANSLATOR.translate(b"[1, 2]", received_at=NOW)
    body, status = acknowledged_answer(shape)
    assert status == 422 and body["refused"] >= 1
