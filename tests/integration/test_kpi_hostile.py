"""KPIs through a real worker after wild dates and a hostile backlog (issue 12).

(a) Events dated 9999 (``+00:00`` and ``-12:00``) and 2099 followed by normal ones: the
normal ones are counted, ``GET /kpis`` and ``GET /kpis/status`` answer 200.
(b) A backlog of 10,000 mutated records mixed with 20,000 valid ones: the worker's peak
RSS stays under twice the peak of a run with 30,000 valid records, its housekeeping
timer keeps its period and ``/health`` keeps answering while it idles afterwards.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psutil

from tests.hostile_backlog import backlog
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.kafka_io import event_bytes, produce, wait_for


def metric_sum(text: str, name: str, labels: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def deal(deal_id: str, occurred_at: str) -> tuple[bytes, bytes]:
    return event_bytes(
        event_id=str(uuid.uuid4()), source="test", entity="deal", entity_id=deal_id,
        op="create", occurred_at=occurred_at, owner_id="rep-001",
        fields={"stage": "Prospecting", "amount": 100},
    )  # fmt: skip


async def test_wild_years_then_normal_events_are_counted_and_served(
    worker_factory: WorkerFactory,
) -> None:
    worker = worker_factory(kpi_publish_interval_s="0.3")
    s = worker.settings
    now = datetime.now(UTC)
    await produce(s.bootstrap_servers, s.events_topic, [
        deal("D0", (now - timedelta(hours=2)).isoformat()),
        deal("W1", "9999-12-31T23:59:59+00:00"),
        deal("W2", "9999-12-31T23:59:59-12:00"),
        deal("W3", "2099-06-01T00:00:00+00:00"),
    ])  # fmt: skip
    await produce(s.bootstrap_servers, s.events_topic, [
        deal("D1", (now - timedelta(hours=1)).isoformat()), deal("D2", now.isoformat()),
    ])  # fmt: skip

    def new_deals() -> float | None:
        body = orjson.loads(worker.http_text("/kpis?kpi=new_deals&scope_kind=global&window=all"))
        return body["snapshots"][0]["value"] if body["count"] else None

    assert await wait_for(lambda: new_deals() == 3.0, 45), worker.log_tail()
    await wait_for(lambda: False, 1.0)  # a few more publication rounds
    assert new_deals() == 3.0  # the wild ones are not counted, the later ones all are
    assert worker.http_status("/kpis") == 200
    assert worker.http_status("/kpis/status") == 200
    assert worker.http_status("/kpis?window=month") == 200
    status = orjson.loads(worker.http_text("/kpis/status"))
    assert status["late"] == 0
    watermark = datetime.fromisoformat(status["watermark"])
    assert now - timedelta(hours=1) <= watermark <= datetime.now(UTC) + timedelta(days=1)
    body = orjson.loads(worker.http_text("/kpis"))
    assert body["count"] > 0
    assert all(snap["window"]["start"] < "2027" for snap in body["snapshots"])
    # the three wild ones: refused by the KPIs (out_of_range), or before them by the input
    # contract (dead letters; every other event here is valid)
    metrics = worker.http_text("/metrics")
    refused = metric_sum(metrics, "crm_pulse_kpi_skipped_total", 'reason="out_of_range"')
    refused += metric_sum(metrics, "crm_pulse_invalid_events_total")
    assert refused == 3, metrics
    assert worker.proc is not None and worker.proc.poll() is None


@dataclass
class Drain:
    peak_rss: int
    drained_s: float
    housekeeping_passes: float
    idle_s: float
    health_slowest_s: float
    health_failures: int


def processed(metrics: str) -> float:
    return (
        metric_sum(metrics, "crm_pulse_events_total")
        + metric_sum(metrics, "crm_pulse_invalid_events_total")
        + metric_sum(metrics, "crm_pulse_duplicate_events_total")
        # the backlog is shuffled: changes older than their record's last one are counted,
        # not applied (the out-of-order policy)
        + metric_sum(metrics, "crm_pulse_out_of_order_events_total")
    )


async def drain(worker: WorkerProcess, messages: list[tuple[bytes, bytes]], idle: float) -> Drain:
    """Produce ``messages``, sample the worker's RSS until they are processed and for
    ``idle`` seconds after; count housekeeping passes and /health answers meanwhile."""
    assert worker.proc is not None
    pid = worker.proc.pid
    ps = psutil.Process(pid)
    s = worker.settings
    await produce(s.bootstrap_servers, s.events_topic, messages)
    started = time.monotonic()
    peak, drained_at, passes_at = ps.memory_info().rss, None, 0.0
    slowest, failures = 0.0, 0
    while True:
        await wait_for(lambda: False, 0.5)
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        assert worker.proc.pid == pid
        peak = max(peak, ps.memory_info().rss)
        asked = time.monotonic()
        failures += worker.http_status("/health") != 200
        slowest = max(slowest, time.monotonic() - asked)
        metrics = worker.http_text("/metrics")
        if drained_at is None:
            if processed(metrics) >= len(messages):
                drained_at = time.monotonic()
                passes_at = metric_sum(metrics, "crm_pulse_housekeeping_seconds_count")
            assert time.monotonic() - started < 240, "backlog not drained in 240 s"
        elif time.monotonic() - drained_at >= idle:
            passes = metric_sum(metrics, "crm_pulse_housekeeping_seconds_count") - passes_at
            return Drain(peak, drained_at - started, passes, time.monotonic() - drained_at,
                         slowest, failures)  # fmt: skip


async def test_hostile_backlog_keeps_memory_and_timers_bounded(
    worker_factory: WorkerFactory,
) -> None:
    now = datetime.now(UTC)
    total, mutated, idle = 30_000, 10_000, 20.0
    runs: dict[str, Drain] = {}
    for name, messages in (
        ("valid", backlog(now, total, 0)),
        ("hostile", backlog(now, total - mutated, mutated)),
    ):
        suffix = uuid.uuid4().hex[:8]
        worker = worker_factory(topic_prefix=f"{name[0]}{suffix}", app_id=f"hostile-{suffix}")
        runs[name] = await drain(worker, messages, idle)
        worker.stop()
    valid, hostile = runs["valid"], runs["hostile"]
    mb = 2**20
    print(
        f"peak RSS valid {valid.peak_rss / mb:.0f} MB, hostile {hostile.peak_rss / mb:.0f} MB "
        f"(x{hostile.peak_rss / valid.peak_rss:.2f}); drained in {valid.drained_s:.1f} / "
        f"{hostile.drained_s:.1f} s; housekeeping passes in {hostile.idle_s:.0f} s idle: "
        f"{valid.housekeeping_passes:.0f} / {hostile.housekeeping_passes:.0f}; slowest "
        f"/health {valid.health_slowest_s:.2f} / {hostile.health_slowest_s:.2f} s"
    )
    assert hostile.peak_rss < 2 * valid.peak_rss
    interval = 5.0  # Settings.housekeeping_interval_s: on time means one pass per interval
    expected = hostile.idle_s / interval
    assert hostile.housekeeping_passes >= expected - 1.5, (hostile, valid)
    assert hostile.health_failures == 0
