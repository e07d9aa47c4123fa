"""A publication round goes out a chunk at a time, each acknowledged before the next, so
that the alerts of the batches judged meanwhile never queue behind a whole round."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.agents import kpi_publish
from streams.metrics import Metrics
from streams.settings import Settings

WATERMARK = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def snapshot(i: int) -> tuple[str, dict[str, Any]]:
    body = {
        "kpi": "deals_won", "scope": {"kind": "owner", "id": f"rep-{i}"}, "dimensions": {},
        "window": {"kind": "day", "start": "2026-01-01", "end": "2026-01-02"},
        "value": float(i), "trust": {"value": 1.0},
    }  # fmt: skip
    return f"deals_won|owner:rep-{i}|day", body


def publisher(metrics: Metrics, settings: Settings) -> tuple[Any, Any]:
    """What a round uses of the worker (its producer, metrics and settings), and the topic."""
    pulse = SimpleNamespace(
        app=SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: object())),
        metrics=metrics, settings=settings,
    )  # fmt: skip
    return pulse, SimpleNamespace(get_topic_name=lambda: "crm.kpis")


class Runtime:
    """The KPI runtime's side of a round: parts of snapshots, one per dirty scope."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.watermark = WATERMARK

    def collect_parts(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        n = 0
        for size in self.sizes:
            yield [snapshot(n + i) for i in range(size)]
            n += size


async def test_a_round_goes_out_a_chunk_at_a_time_each_acknowledged_before_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    chunks: list[list[tuple[bytes, bytes]]] = []
    pending: list[asyncio.Future[None]] = []

    async def send_keyed(
        producer: Any, topic: str, records: Iterable[tuple[bytes, bytes]]
    ) -> list[asyncio.Future[None]]:
        assert all(f.done() for f in pending), "a chunk was sent before the last was acked"
        chunks.append(list(records))
        future: asyncio.Future[None] = loop.create_future()
        loop.call_later(0.001, future.set_result, None)  # the broker acks a moment later
        pending.append(future)
        return [future]

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    metrics = Metrics()
    pulse, topic = publisher(metrics, Settings())
    sizes = [86] * 14 + [30]  # 1,234 snapshots over 15 scopes
    sent = await kpi_publish.publish_now(pulse, Runtime(sizes), topic)  # type: ignore[arg-type]

    assert sent == 1234
    size = kpi_publish.PUBLISH_CHUNK
    full, rest = divmod(1234, size)
    assert [len(c) for c in chunks] == [size] * full + [rest]
    keys = [k for chunk in chunks for k, _ in chunk]
    assert keys == [snapshot(i)[0].encode() for i in range(1234)]  # every one, in order
    assert orjson.loads(chunks[-1][-1][1])["value"] == 1233.0
    assert metrics.registry.get_sample_value("crm_pulse_kpi_snapshots_total") == 1234


async def test_a_round_with_nothing_dirty_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_keyed(*_: Any) -> list[asyncio.Future[None]]:
        raise AssertionError("nothing to send")

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    pulse = SimpleNamespace(metrics=Metrics(), settings=Settings())
    topic = SimpleNamespace(get_topic_name=lambda: "crm.kpis")
    assert await kpi_publish.publish_now(pulse, Runtime([]), topic) == 0  # type: ignore[arg-type]


class FakeTime:
    """A clock the test moves: work advances it, pauses are recorded (and advance it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


async def test_the_pacer_pauses_after_each_spent_slice_in_proportion_to_its_share() -> None:
    t = FakeTime()
    pacer = kpi_publish.Pacer(0.25, slice_s=0.005, clock=t.clock, sleep=t.sleep)
    t.now += 0.002
    await pacer.tick()
    assert t.pauses == []  # within the slice: no pause
    t.now += 0.008  # 10 ms of work in this slice
    await pacer.tick()
    assert t.pauses == [pytest.approx(0.030)]  # 10 ms of work, 30 ms for the others: 25 %
    for _ in range(200):  # a long round: 2 ms steps
        t.now += 0.002
        await pacer.tick()
    work = t.now - 100.0 - sum(t.pauses)
    assert work == pytest.approx(0.010 + 200 * 0.002)
    assert work / (t.now - 100.0) == pytest.approx(0.25, abs=0.01)


async def test_broker_waits_do_not_count_as_work() -> None:
    t = FakeTime()
    pacer = kpi_publish.Pacer(0.5, slice_s=0.005, clock=t.clock, sleep=t.sleep)

    async def broker() -> str:
        t.now += 1.0  # a slow acknowledgement
        return "acked"

    t.now += 0.001
    assert await pacer.wait(broker()) == "acked"
    assert t.pauses == []  # 1 ms of work before it: no pause
    t.now += 0.006
    assert await pacer.wait(broker()) == "acked"
    # the slice's work (1 ms carried over the first wait, then 6 ms) is paid before the wait
    assert t.pauses == [pytest.approx(0.007)]
    assert t.now - 100.0 - 2 * 1.0 - sum(t.pauses) == pytest.approx(0.007)  # the work


async def test_a_round_of_every_scope_is_paced_to_the_settings_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The round of a new watermark day (every scope) no longer runs in one go: its work
    is spread so that it takes at most ``kpi_publish_max_share`` of the time."""
    t = FakeTime()

    async def send_keyed(
        producer: Any, topic: str, records: Iterable[tuple[bytes, bytes]]
    ) -> list[asyncio.Future[None]]:
        t.now += 0.001 * len(list(records)) / 100  # encoding: 1 ms per 100 snapshots
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return [future]

    class CostlyRuntime(Runtime):
        def collect_parts(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
            for part in super().collect_parts():
                t.now += 0.003  # computing a scope's snapshots: 3 ms
                yield part

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    pulse, topic = publisher(Metrics(), Settings(kpi_publish_max_share=0.2))
    pacer = kpi_publish.Pacer(pulse.settings.kpi_publish_max_share, clock=t.clock, sleep=t.sleep)
    started = t.now
    sent = await kpi_publish.publish_now(
        pulse,
        CostlyRuntime([20] * 300),
        topic,
        pacer,  # type: ignore[arg-type]
    )
    assert sent == 6000
    work = t.now - started - sum(t.pauses)  # the broker acknowledges at once here
    assert work == pytest.approx(300 * 0.003 + 60 * 0.001)
    assert work / (t.now - started) == pytest.approx(0.2, abs=0.01)
    # never one long pause: at most a slice and one step of work, paid at 20 %
    assert max(t.pauses) <= (0.005 + 0.003) * 4 + 1e-9


async def test_a_chunk_the_broker_never_acknowledges_fails_the_round_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen broker must not leave the round waiting forever (the KPIs would stop
    without a word): past twice the producer request timeout the round fails, and the
    publish task stops the worker as a failed shipment does."""

    async def send_keyed(*_: Any) -> list[asyncio.Future[None]]:
        return [asyncio.get_running_loop().create_future()]  # never acknowledged

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    pulse, topic = publisher(Metrics(), Settings(producer_request_timeout_s=0.02))
    with pytest.raises(kpi_publish.PublicationFailed, match=r"within 0\.04 s"):
        await kpi_publish.publish_now(pulse, Runtime([3]), topic)  # type: ignore[arg-type]
    assert pulse.metrics.registry.get_sample_value("crm_pulse_kpi_snapshots_total") == 0


async def test_a_chunk_the_broker_refuses_fails_the_round(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_keyed(*_: Any) -> list[asyncio.Future[None]]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(RuntimeError("request timed out"))  # aiokafka's delivery error
        return [future]

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    pulse, topic = publisher(Metrics(), Settings())
    with pytest.raises(kpi_publish.PublicationFailed, match="request timed out"):
        await kpi_publish.publish_now(pulse, Runtime([3]), topic)  # type: ignore[arg-type]
