"""The one shipper: results shipped in order, queued ones together (group commit), alerts and
derived records acknowledged before the states that remember them, for every changelog."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.judge import BatchResult
from streams.metrics import Metrics
from streams.org import OrgDirectory
from streams.runtime import shipper as shipping
from streams.runtime.alerting import AlertingRuntime
from streams.runtime.shipper import Shipper, merge
from streams.settings import Settings
from tests.unit.shipkit import CrashRecordingApp

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def result(tag: str, writes: dict[bytes, bytes], skips: int = 0) -> BatchResult:
    r = BatchResult()
    r.alerts = [tag]  # type: ignore[list-item]  # opaque to the shipper's merge
    r.writes = {k: (0, v) for k, v in writes.items()}
    r.due = {k: 1.0 for k in writes}
    r.stats.skips = Counter({("rule", "missing"): skips})
    return r


def alert(n: int) -> AlertEvent:
    return AlertEvent(
        alert_id=f"a{n}", status=AlertStatus.FIRING, rule_id="r1", rule_version=1,
        severity=Severity.WARNING, subject=Subject(kind="entity", entity="deal", id=f"D-{n}"),
        owner_id="rep-1", title="t", message="m", fired_at=T0, sequence=1,
    )  # fmt: skip


def test_merge_keeps_order_and_the_last_state_of_each_record_per_changelog() -> None:
    merged = merge(
        [
            (result("a", {b"deal:1": b"v1", b"deal:2": b"v1"}, skips=1), "entity"),
            (result("f", {b"deal:1": b"count"}), "counts"),
            (result("b", {b"deal:1": b"v2"}, skips=2), "entity"),
        ]
    )
    assert merged.result.alerts == ["a", "f", "b"]
    assert merged.writes == {
        "entity": {b"deal:2": (0, b"v1"), b"deal:1": (0, b"v2")},
        "counts": {b"deal:1": (0, b"count")},  # the same key in another table stays apart
    }
    assert list(merged.writes["entity"]) == [b"deal:2", b"deal:1"]  # deal:1 last by b
    assert merged.result.stats.skips[("rule", "missing")] == 3


def test_a_single_result_is_shipped_as_it_is() -> None:
    only = result("a", {b"deal:1": b"v1"})
    shipment = merge([(only, "entity")])
    assert shipment.result is only and shipment.writes == {"entity": only.writes}
    assert merge([(result("a", {}), "entity")]).writes == {}


class FakeProducer:
    """Records what is sent, in order; acknowledges when the test says so."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []  # (event, topic)
        self.pending: list[tuple[str, asyncio.Future[None]]] = []
        self.batches: list[tuple[str, list[tuple[bytes, bytes]]]] = []  # (topic, records)

    def _future(self, topic: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((topic, fut))
        return fut

    async def send(self, topic: str, key: Any, value: Any, *args: Any) -> asyncio.Future[None]:
        self.log.append(("send", topic))
        return self._future(topic)

    def _ensure_producer(self) -> FakeProducer:
        return self

    def create_batch(self) -> Any:
        class Batch:
            def __init__(self) -> None:
                self.records: list[Any] = []

            def append(self, **kw: Any) -> int:
                self.records.append(kw)
                return 1

            def record_count(self) -> int:
                return len(self.records)

        return Batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[None]:
        self.log.append(("send", topic))
        self.batches.append((topic, [(r["key"], r["value"]) for r in batch.records]))
        return self._future(topic)

    def ack_all(self) -> list[str]:
        acked = []
        for topic, fut in self.pending:
            if not fut.done():
                fut.set_result(None)
                self.log.append(("ack", topic))
                acked.append(topic)
        return acked


class FactsHookStandIn:
    """A change hook: derives the changes' count, sends one record per send."""

    prompt = False

    def __init__(self, producer: FakeProducer) -> None:
        self.producer = producer
        self.sent: list[list[Any]] = []

    def derive(self, changes: Any) -> list[Any]:
        return list(changes)

    async def send(self, derived: Any) -> list[asyncio.Future[None]]:
        self.sent.append(list(derived))
        return [await self.producer.send("facts", b"k", b"v")]


def make_shipper(
    budget_per_hour: int = 0, max_outstanding: int = 16_000
) -> tuple[Shipper, FakeProducer, list[Any]]:
    producer = FakeProducer()
    app = CrashRecordingApp(producer)
    crashed = app.crashed

    settings = Settings(notify_budget_per_hour=budget_per_hour)
    alerting = AlertingRuntime.from_settings(settings, OrgDirectory())
    table = type("Table", (), {"data": {}})()
    facts_hook = FactsHookStandIn(producer)

    shipper = Shipper(
        app=app, settings=settings, metrics=Metrics(), alerting=alerting,
        entity_table=table, clock=lambda: T0, change_hooks=[facts_hook],
        max_outstanding=max_outstanding,
    )  # fmt: skip
    shipper._entity_changelog = "entity-changelog"
    return shipper, producer, crashed


async def acknowledge_until_idle(shipper: Shipper, producer: FakeProducer) -> None:
    for _ in range(200):
        await asyncio.sleep(0)
        producer.ack_all()
        if not shipper.pending:
            return
    raise AssertionError("the shipper did not finish")


async def test_alerts_and_derived_records_are_acknowledged_before_any_state_write() -> None:
    shipper, producer, _ = make_shipper()
    acked: list[str] = []
    ingest = BatchResult(alerts=[alert(1)], writes={b"deal:1": (0, b"s")})
    ingest.changes = ["change"]  # type: ignore[list-item]  # opaque to the shipper
    counts = BatchResult(alerts=[alert(2)], writes={b"r1|rep-1": (0, b"3")})
    await shipper.submit(ingest, lambda: acked.append("ingest"))
    await shipper.put(counts, lambda: acked.append("counts"), 0.0, changelog="counts-changelog")
    await acknowledge_until_idle(shipper, producer)
    assert acked == ["ingest", "counts"]
    assert shipper.entity_table.data == {b"deal:1": b"s"}  # applied before it was queued
    log = producer.log
    first_write = next(i for i, (e, t) in enumerate(log) if e == "send" and t.endswith("changelog"))
    outputs = [t for e, t in log if e == "send" and not t.endswith("changelog")]
    acked_before = [t for e, t in log[:first_write] if e == "ack"]
    assert sorted(outputs) == sorted(acked_before)  # all acknowledged before any state write
    assert sorted(outputs) == sorted([Settings().alerts_topic] * 2 + ["facts"])
    written = {t for e, t in log[first_write:] if e == "send"}
    assert written == {"entity-changelog", "counts-changelog"}  # both tables, same guarantee
    fired = {"rule": "r1", "severity": "warning", "status": "FIRING"}
    assert shipper.metrics.registry.get_sample_value("crm_pulse_alerts_total", fired) == 2


async def test_every_alert_goes_through_the_gate() -> None:
    shipper, producer, _ = make_shipper(budget_per_hour=1)
    shipper.alerting.alerts_read.set()  # the budget is rebuilt: no wait
    await shipper.submit(BatchResult(alerts=[alert(1), alert(2)]))
    await acknowledge_until_idle(shipper, producer)
    muted = shipper.metrics.registry.get_sample_value(
        "crm_pulse_alerts_muted_total", {"rule": "r1", "reason": "held_back"}
    )
    assert muted == 1  # over the owner's budget: published, not notified


async def test_later_alerts_go_out_while_an_earlier_shipment_waits_for_the_broker() -> None:
    """The send stage does not wait for acknowledgements: the alerts of results queued
    after a shipment are sent at once. States are still written only once their own
    shipment's outputs are acknowledged, in queue order, and inputs are acked in order."""
    shipper, producer, _ = make_shipper()
    acked: list[str] = []
    alerts_topic = Settings().alerts_topic
    await shipper.put(
        BatchResult(alerts=[alert(1)], writes={b"deal:1": (0, b"a")}),
        lambda: acked.append("a"), 0.0,
    )  # fmt: skip
    for _ in range(5):
        await asyncio.sleep(0)  # "a" is sent, and waits for the broker
    assert producer.log == [("send", alerts_topic)]
    for n, tag in ((2, "b"), (3, "c")):
        await shipper.put(
            BatchResult(alerts=[alert(n)], writes={b"deal:1": (0, tag.encode())}),
            lambda tag=tag: acked.append(tag), 0.0,
        )  # fmt: skip
        for _ in range(5):
            await asyncio.sleep(0)
    # b's and c's alerts are out although a's are not acknowledged; no state is written
    assert producer.log == [("send", alerts_topic)] * 3 and acked == []
    assert shipper.pending
    await acknowledge_until_idle(shipper, producer)
    assert acked == ["a", "b", "c"]
    states = [records for topic, records in producer.batches if topic == "entity-changelog"]
    assert [v for records in states for _, v in records][-1] == b"c"  # the last state last
    # every state write follows the acknowledgement of the alerts sent before it
    first_write = producer.log.index(("send", "entity-changelog"))
    assert ("ack", alerts_topic) in producer.log[:first_write]


async def test_shipments_sent_meanwhile_are_written_together_last_state_wins() -> None:
    shipper, producer, _ = make_shipper()
    acked: list[str] = []
    results = (
        ("a", {b"deal:1": b"a"}),
        ("b", {b"deal:1": b"b", b"deal:2": b"b"}),
        ("c", {b"deal:1": b"c"}),
    )
    for n, (tag, writes) in enumerate(results):
        batch = BatchResult(alerts=[alert(n)], writes={k: (0, v) for k, v in writes.items()})
        batch.changes = [f"{tag}1", f"{tag}2"]  # type: ignore[list-item]  # opaque here
        await shipper.put(batch, lambda tag=tag: acked.append(tag), 0.0)
        assert batch.changes == []  # derived when queued, then let go
        for _ in range(5):
            await asyncio.sleep(0)
    # all three sent; the writer took "a" (sent its facts) and waits for its outputs, "b"
    # and "c" wait for it
    sent = [t for e, t in producer.log]
    assert sorted(sent) == sorted([Settings().alerts_topic] * 3 + ["facts"])
    await acknowledge_until_idle(shipper, producer)
    assert acked == ["a", "b", "c"]
    states = [records for topic, records in producer.batches if topic == "entity-changelog"]
    assert states == [
        [(b"deal:1", b"a")],
        [(b"deal:2", b"b"), (b"deal:1", b"c")],  # b and c in one round: deal:1's last state
    ]
    hook = shipper.change_hooks[0]
    assert isinstance(hook, FactsHookStandIn)
    # what each result's changes gave, sent once per round, in queue order
    assert hook.sent == [[["a1", "a2"]], [["b1", "b2"], ["c1", "c2"]]]


async def test_writers_wait_while_too_many_input_records_are_outstanding() -> None:
    """Backpressure counts input records, not results: small results never wait, and a
    result that does not fit waits until an earlier one is written (its memory freed)."""
    shipper, producer, _ = make_shipper(max_outstanding=10)
    acked: list[str] = []
    for n, tag in enumerate(("a", "b", "c")):  # 3 small results: 3 records of 10
        small = BatchResult(alerts=[alert(n)])
        await shipper.put(small, lambda tag=tag: acked.append(tag), 0.0, weight=1)
    big = asyncio.create_task(
        shipper.put(BatchResult(alerts=[alert(9)]), lambda: acked.append("big"), 0.0, weight=8)
    )
    for _ in range(10):
        await asyncio.sleep(0)
    assert not big.done() and shipper.queue.qsize() == 0  # 3 + 8 > 10: waits, not queued
    assert acked == []
    await acknowledge_until_idle(shipper, producer)  # the small ones written: room for it
    await asyncio.wait_for(big, timeout=2)
    await acknowledge_until_idle(shipper, producer)
    assert acked == ["a", "b", "c", "big"]


async def test_a_failed_shipment_stops_the_worker_and_acks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_send(self: Shipper, shipment: Any) -> list[Any]:
        raise RuntimeError("broker refused the batch")

    monkeypatch.setattr(shipping.Shipper, "send_outputs", failing_send)
    monkeypatch.setattr(shipping.Shipper, "count", lambda self, result: None)
    shipper, _, crashed = make_shipper()
    acked: list[str] = []
    await shipper.put(result("a", {}), lambda: acked.append("a"), 0.0)
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert shipper.task is not None
    with pytest.raises(RuntimeError, match="refused"):
        await shipper.task
    assert [str(e) for e in crashed] == ["broker refused the batch"] and acked == []
    assert shipper.failure() == "RuntimeError('broker refused the batch')"
    with pytest.raises(RuntimeError, match="refused"):  # the next writer hears of it
        await shipper.put(result("b", {}), lambda: acked.append("b"), 0.0)


async def test_a_shipment_the_broker_never_acknowledges_stops_the_worker_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen broker may leave a batch waiting with no deadline in the producer: the
    shipper's own bound (2 x the producer request timeout) fails it, nothing is acked."""
    monkeypatch.setattr(shipping.Shipper, "count", lambda self, result: None)
    shipper, producer, crashed = make_shipper()
    object.__setattr__(shipper, "settings", Settings(producer_request_timeout_s=0.05))
    acked: list[str] = []
    shipped = BatchResult(alerts=[alert(1)], writes={b"deal:1": (0, b"s")})
    await shipper.put(shipped, lambda: acked.append("a"), 0.0)
    await asyncio.wait_for(shipper.queue.join(), timeout=5)  # never acknowledged by producer
    assert producer.pending and not [e for e, _ in producer.log if e == "ack"]  # none acked
    assert shipper.task is not None
    with pytest.raises(shipping.ShipmentTimeout, match=r"within 0\.1 s"):
        await shipper.task
    assert acked == [] and [type(e).__name__ for e in crashed] == ["ShipmentTimeout"]
    assert shipper.failure() is not None and "ShipmentTimeout" in shipper.failure()


def test_facts_messages_stay_small_whatever_the_shipment() -> None:
    import orjson

    from streams.agents.kpi_facts import encoded_by_scope, facts_records

    by_scope = {
        "global:all": [[[0, i], 1, [], {}] for i in range(2500)],
        "owner:ann": [[0]],
        "owner:bob": [[1]],
    }
    partition = {b"global:all": 0, b"owner:ann": 0, b"owner:bob": 2}
    records = list(facts_records(encoded_by_scope(by_scope), partition.__getitem__, 12.5, 1000))
    assert [(p, k) for p, k, _ in records] == [(0, None)] * 3 + [(2, None)]
    bodies = [orjson.loads(v) for *_, v in records]
    assert [{s: len(f) for s, f in b["sc"].items()} for b in bodies] == [
        {"global:all": 1000},
        {"global:all": 1000},
        {"global:all": 500, "owner:ann": 1},  # a message per partition, not per scope
        {"owner:bob": 1},
    ]
    assert [f[0][1] for b in bodies[:3] for f in b["sc"]["global:all"]] == list(range(2500))
    assert all(b["wm"] == 12.5 for b in bodies)
