"""The ingest agent's batch step: the engine judges a batch with the collector paused, and
the collector is as it was afterwards, however the batch ends."""

from __future__ import annotations

import gc
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.agents.ingest import process_batch
from streams.gc_policy import collector_paused
from streams.judge.result import BatchResult
from streams.metrics import Metrics


def test_the_collector_is_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a batch that fails")
    assert gc.isenabled()


def test_a_collector_switched_off_elsewhere_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_batch_is_judged_and_prepared_with_the_collector_paused_and_its_states_applied() -> None:
    seen: list[bool] = []
    judged = BatchResult(writes={b"deal:1": (0, b"{}"), b"deal:2": (1, None)})

    def judge(records: Any, lookup: Any) -> BatchResult:
        seen.append(gc.isenabled())
        return judged

    def prepare(result: BatchResult, ack: Any, received: float, weight: int) -> tuple[Any, ...]:
        seen.append(gc.isenabled())  # the changes are dropped in the same pause
        return (result, ack, received)

    table: dict[bytes, bytes] = {b"deal:2": b"old"}
    rt = SimpleNamespace(
        engine=SimpleNamespace(process=judge), state_get=table.get,
        entity_table=SimpleNamespace(data=table), metrics=Metrics(CollectorRegistry()),
        shipper=SimpleNamespace(prepare=prepare),
    )  # fmt: skip
    message = SimpleNamespace(topic="t", partition=0, offset=1, key=b"k", value=b"v",
                              timestamp=1.5)  # fmt: skip
    queued = process_batch(rt, [message], print, 2.5)  # type: ignore[arg-type]
    assert seen == [False, False] and gc.isenabled()
    assert queued == (judged, print, 2.5)  # type: ignore[comparison-overlap]
    assert table == {b"deal:1": b"{}"}  # written, and the tombstone applied


async def test_a_chunks_alerts_are_handed_over_before_the_collector_runs_again() -> None:
    """The shipper's turn (it sends the chunk's alerts) comes while the collector is still
    paused: the young collection the chunk's objects trigger comes after those alerts."""
    import asyncio

    from streams.agents.ingest import judge_chunk

    seen: list[tuple[str, bool]] = []

    class Shipper:
        def prepare(self, result: BatchResult, ack: Any, received: float, weight: int) -> str:
            return "queued"

        async def enqueue(self, item: str) -> None:
            async def send_alerts() -> None:  # the shipper task, woken by the queued item
                seen.append((item, gc.isenabled()))

            tasks.append(asyncio.get_running_loop().create_task(send_alerts()))

    tasks: list[asyncio.Task[None]] = []
    rt = SimpleNamespace(
        engine=SimpleNamespace(process=lambda records, lookup: BatchResult()),
        state_get={}.get, entity_table=SimpleNamespace(data={}),
        metrics=Metrics(CollectorRegistry()), shipper=Shipper(),
    )  # fmt: skip
    message = SimpleNamespace(topic="t", partition=0, offset=1, key=b"k", value=b"v",
                              timestamp=1.5)  # fmt: skip
    assert gc.isenabled()
    await judge_chunk(rt, [message], print, 2.5)  # type: ignore[arg-type]
    assert seen == [("queued", False)]  # sent in the same pause
    assert gc.isenabled()  # and the collector runs again once the chunk is through
    await asyncio.gather(*tasks)
