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
    pulse = SimpleNamespace(
        app=SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: object())),
        metrics=metrics, settings=Settings(),
    )  # fmt: skip
    topic = SimpleNamespace(get_topic_name=lambda: "crm.kpis")
    sizes = [86] * 14 + [30]  # 1,234 snapshots over 15 scopes
    sent = await kpi_publish.publish_now(pulse, Runtime(sizes), topic)  # type: ignore[arg-type]

    assert sent == 1234
    size = kpi_publish.PUBLISH_CHUNK
    assert [len(c) for c in chunks] == [size, size, 1234 - 2 * size]
    keys = [k for chunk in chunks for k, _ in chunk]
    assert keys == [snapshot(i)[0].encode() for i in range(1234)]  # every one, in order
    assert orjson.loads(chunks[2][-1][1])["value"] == 1233.0
    assert metrics.registry.get_sample_value("crm_pulse_kpi_snapshots_total") == 1234


async def test_a_round_with_nothing_dirty_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_keyed(*_: Any) -> list[asyncio.Future[None]]:
        raise AssertionError("nothing to send")

    monkeypatch.setattr(kpi_publish, "send_keyed", send_keyed)
    pulse = SimpleNamespace(metrics=Metrics(), settings=Settings())
    topic = SimpleNamespace(get_topic_name=lambda: "crm.kpis")
    assert await kpi_publish.publish_now(pulse, Runtime([]), topic) == 0  # type: ignore[arg-type]
