"""The ingest shipper: batches shipped in order, queued ones together (group commit)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from streams.agents import ingest
from streams.engine import BatchResult


def result(tag: str, writes: dict[bytes, bytes], skips: int = 0) -> BatchResult:
    r = BatchResult()
    r.alerts = [tag]  # type: ignore[list-item]  # opaque to the shipper's merge
    r.writes = {k: (0, v) for k, v in writes.items()}
    r.due = {k: 1.0 for k in writes}
    r.stats.skips = Counter({("rule", "missing"): skips})
    return r


def test_merge_keeps_batch_order_and_the_last_state_of_each_record() -> None:
    merged = ingest.merge_results(
        [
            result("a", {b"deal:1": b"v1", b"deal:2": b"v1"}, skips=1),
            result("b", {b"deal:1": b"v2"}, skips=2),
        ]
    )
    assert merged.alerts == ["a", "b"]
    assert merged.writes == {b"deal:2": (0, b"v1"), b"deal:1": (0, b"v2")}
    assert list(merged.writes) == [b"deal:2", b"deal:1"]  # deal:1 last written by batch b
    assert merged.stats.skips[("rule", "missing")] == 3


def test_a_single_result_is_shipped_as_it_is() -> None:
    only = result("a", {b"deal:1": b"v1"})
    assert ingest.merge_results([only]) is only


async def test_batches_queued_during_a_shipment_go_out_together_then_ack_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shipped: list[list[str]] = []
    release = asyncio.Event()

    async def fake_ship(pulse: Any, merged: BatchResult, received: float) -> None:
        shipped.append(list(merged.alerts))  # type: ignore[arg-type]
        if len(shipped) == 1:
            await release.wait()  # the broker is slow on the first shipment

    monkeypatch.setattr(ingest, "ship", fake_ship)
    monkeypatch.setattr(ingest, "count_batch", lambda pulse, result: None)
    shipper = ingest.Shipper(pulse=object())  # type: ignore[arg-type]
    acked: list[str] = []
    for tag in ("a", "b", "c"):
        await shipper.put(result(tag, {}), lambda tag=tag: acked.append(tag), 0.0)
        await asyncio.sleep(0)  # the shipper takes "a" first, then waits on the broker
    assert shipped == [["a"]] and acked == []
    release.set()
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert shipped == [["a"], ["b", "c"]]  # one shipment for what queued meanwhile
    assert acked == ["a", "b", "c"]


async def test_a_failed_shipment_stops_the_worker_and_acks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_ship(pulse: Any, merged: BatchResult, received: float) -> None:
        raise RuntimeError("broker refused the batch")

    crashed: list[BaseException] = []

    class App:
        async def crash(self, reason: BaseException) -> None:
            crashed.append(reason)

    class Pulse:
        app = App()

    monkeypatch.setattr(ingest, "ship", failing_ship)
    monkeypatch.setattr(ingest, "count_batch", lambda pulse, result: None)
    shipper = ingest.Shipper(pulse=Pulse())  # type: ignore[arg-type]
    acked: list[str] = []
    await shipper.put(result("a", {}), lambda: acked.append("a"), 0.0)
    await asyncio.wait_for(shipper.queue.join(), timeout=2)
    assert shipper._task is not None
    with pytest.raises(RuntimeError, match="refused"):
        await shipper._task
    assert [str(e) for e in crashed] == ["broker refused the batch"] and acked == []


def test_facts_messages_stay_small_whatever_the_shipment() -> None:
    from streams.agents.kpis import facts_messages

    by_scope = {"global:all": [[[0, i], 1, [], {}] for i in range(2500)], "owner:ann": [[0]]}
    messages = list(facts_messages(by_scope, 12.5, per_message=1000))
    keys = [k for k, _ in messages]
    assert keys == [b"global:all"] * 3 + [b"owner:ann"]
    import orjson

    bodies = [orjson.loads(v) for _, v in messages]
    assert [len(b["ev"]) for b in bodies] == [1000, 1000, 500, 1]
    assert [f[0][1] for b in bodies[:3] for f in b["ev"]] == list(range(2500))  # in order
    assert all(b["wm"] == 12.5 for b in bodies)
