"""Worker memory and timers after a hostile backlog, beside a valid-only baseline.

Starts a local Kafka broker, then two fresh workers in turn (own topics and group): one
drains ``--total`` valid events (the baseline), the other the same number of events of
which ``--mutated`` are mutated (byte flips, wild years, type swaps, NaN, deep nesting:
``tests/hostile_backlog.py``). For each it samples the worker's resident set (psutil)
while draining and for ``--idle`` seconds after, and reads the housekeeping timer's
duration from ``/metrics`` and how long ``/health`` takes to answer. Prints one table.

Run: ``python benchmarks/kpi_hostile_backlog.py [--total 20000 --mutated 10000]``
(``--source DIR`` runs the workers from another checkout of the package, to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.hostile_backlog as hostile
from streams.processes import stop_process_group
from streams.runtime.broker import LocalKafka, free_port
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.hostile_backlog import backlog
from tests.integration.kafka_io import produce

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """What one worker run measured."""

    name: str
    produced: int
    drained_s: float | None = None
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    cpu_idle: float = 0.0
    housekeeping_max_s: float = 0.0
    housekeeping_passes_idle: int = 0
    health_max_s: float = 0.0
    health_failures: int = 0
    exited: int | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)


def metric_sum(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def http(url: str, timeout: float = 5.0) -> tuple[int | None, str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode(), time.monotonic() - started
    except Exception:
        return None, "", time.monotonic() - started


def processed(text: str) -> float:
    return (
        metric_sum(text, "crm_pulse_events_total")
        + metric_sum(text, "crm_pulse_invalid_events_total")
        + metric_sum(text, "crm_pulse_duplicate_events_total")
        + metric_sum(text, "crm_pulse_out_of_order_events_total")  # shuffled: not applied
    )


def housekeeping(text: str) -> tuple[float, float]:
    """(passes, seconds) of the housekeeping timer so far."""
    return (
        metric_sum(text, "crm_pulse_housekeeping_seconds_count"),
        metric_sum(text, "crm_pulse_housekeeping_seconds_sum"),
    )


def worst_bucket(text: str, name: str) -> float:
    """Upper bound of the largest non-empty histogram bucket (+Inf reported as 60)."""
    worst, previous = 0.0, 0.0
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            count = float(line.rsplit(" ", 1)[1])
            if count > previous:
                worst = 60.0 if le == "+Inf" else float(le)
            previous = count
    return worst


def run_worker(
    kafka: LocalKafka,
    name: str,
    messages: list[tuple[bytes, bytes]],
    *,
    source: Path,
    work: Path,
    idle: float,
    drain_timeout: float,
    rss_limit: int,
) -> Run:
    suffix = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env.update(
        {
            "CRM_PULSE_BROKER": f"kafka://{kafka.bootstrap}",
            "CRM_PULSE_APP_ID": f"hostile-{suffix}",
            "CRM_PULSE_TOPIC_PREFIX": f"h{suffix}",
            "CRM_PULSE_TOPIC_PARTITIONS": "2",
            "CRM_PULSE_RULES_DIR": str(REPO / "rules"),
            "CRM_PULSE_API_AUTH_DISABLED": "true",
            "CRM_PULSE_WEB_PORT": str(free_port()),
            "CRM_PULSE_DATA_DIR": str(work / f"data-{suffix}"),
            "CRM_PULSE_CACHE_DIR": str(kafka.cache_dir),
            "PYTHONPATH": str(source),
        }
    )
    settings = Settings(
        broker=env["CRM_PULSE_BROKER"],
        app_id=env["CRM_PULSE_APP_ID"],
        topic_prefix=env["CRM_PULSE_TOPIC_PREFIX"],
        topic_partitions=2,
        web_port=int(env["CRM_PULSE_WEB_PORT"]),
    )
    asyncio.run(ensure_topics(settings))
    url = f"http://127.0.0.1:{settings.web_port}"
    log = open(work / f"worker-{name}-{suffix}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        cwd=source,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    result = Run(name, len(messages))
    try:
        deadline = time.monotonic() + 90
        while http(url + "/ready")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start: see {log.name}")
            time.sleep(0.3)
        ps = psutil.Process(proc.pid)
        result.rss_start = ps.memory_info().rss
        asyncio.run(produce(settings.bootstrap_servers, settings.events_topic, messages))
        started = time.monotonic()
        idle_from: float | None = None
        passes_at_idle = 0.0
        while True:
            time.sleep(0.5)
            if proc.poll() is not None:
                result.exited = proc.returncode
                break
            if idle_from is not None and len(result.samples) % 10 == 0:
                print(
                    f"{name}: idle {time.monotonic() - idle_from:.0f} s, RSS "
                    f"{ps.memory_info().rss / 2**20:.0f} MB",
                    flush=True,
                )
            rss = ps.memory_info().rss
            result.rss_peak = max(result.rss_peak, rss)
            result.samples.append((time.monotonic() - started, rss))
            if rss > rss_limit:  # a blow-up: stop before it takes the machine
                result.exited = -9
                print(f"{name}: RSS {rss / 2**20:.0f} MB over the limit, stopped", flush=True)
                break
            status, _, took = http(url + "/health", timeout=10)
            result.health_max_s = max(result.health_max_s, took)
            result.health_failures += status != 200
            _, metrics, _ = http(url + "/metrics", timeout=10)
            if idle_from is None:
                if metrics and processed(metrics) >= len(messages):
                    result.drained_s = time.monotonic() - started
                    idle_from = time.monotonic()
                    passes_at_idle = housekeeping(metrics)[0]
                    ps.cpu_percent()
                elif time.monotonic() - started > drain_timeout:
                    break
            elif time.monotonic() - idle_from >= idle:
                result.cpu_idle = ps.cpu_percent()
                if metrics:
                    result.housekeeping_passes_idle = int(housekeeping(metrics)[0] - passes_at_idle)
                    result.housekeeping_max_s = worst_bucket(
                        metrics, "crm_pulse_housekeeping_seconds"
                    )
                break
        if proc.poll() is None:
            result.rss_end = ps.memory_info().rss
    finally:
        stop_process_group(proc, timeout=30)
        log.close()
    return result


def table(runs: list[Run], idle: float, interval: float) -> str:
    mb = 1024 * 1024
    lines = [
        f"{'run':<10} {'events':>7} {'drain s':>8} {'RSS start MB':>13} {'RSS peak MB':>12} "
        f"{'RSS end MB':>11} {'idle CPU %':>10} {'housekeeping max s':>19} "
        f"{'passes idle':>12} {'/health max s':>14} {'exit':>5}"
    ]
    for r in runs:
        drained = "-" if r.drained_s is None else f"{r.drained_s:.1f}"
        lines.append(
            f"{r.name:<10} {r.produced:>7} {drained:>8} {r.rss_start / mb:>13.0f} "
            f"{r.rss_peak / mb:>12.0f} {r.rss_end / mb:>11.0f} {r.cpu_idle:>10.0f} "
            f"{r.housekeeping_max_s:>19.3f} {r.housekeeping_passes_idle:>12} "
            f"{r.health_max_s:>14.2f} {'-' if r.exited is None else r.exited:>5}"
        )
    lines.append(
        f"(idle: {idle:.0f} s after the backlog drained; housekeeping every {interval:.0f} s, "
        f"so about {idle / interval:.0f} passes expected; housekeeping max = upper bound of "
        "the slowest bucket)"
    )
    if len(runs) == 2 and runs[0].rss_peak:
        lines.append(f"peak RSS hostile / valid: {runs[1].rss_peak / runs[0].rss_peak:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--mutated", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--source", type=Path, default=REPO)
    parser.add_argument("--rss-limit-gb", type=float, default=4.0)
    parser.add_argument(
        "--no-poison", action="store_true", help="leave out values that crash older workers"
    )
    parser.add_argument(
        "--flips-only", action="store_true", help="only bit flips (anywhere, or in the year)"
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    if args.flips_only:
        hostile.MUTATIONS = (hostile.flip_bits, hostile.flip_date)
    cache = Path(os.environ.get("CRM_PULSE_CACHE_DIR", Path.home() / ".cache" / "crm-pulse"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kafka = LocalKafka(cache_dir=cache, work_dir=work / "kafka")
        kafka.start()
        try:
            runs = []
            for name, messages in (
                ("valid", backlog(now, args.total, 0)),
                (
                    "hostile",
                    backlog(
                        now, args.total - args.mutated, args.mutated, poison=not args.no_poison
                    ),
                ),
            ):
                runs.append(
                    run_worker(
                        kafka,
                        name,
                        messages,
                        source=args.source.resolve(),
                        work=work,
                        idle=args.idle,
                        drain_timeout=args.drain_timeout,
                        rss_limit=int(args.rss_limit_gb * 2**30),
                    )
                )
                print(f"{name}: done", flush=True)
        finally:
            kafka.stop()
    print(table(runs, args.idle, Settings().housekeeping_interval_s))


if __name__ == "__main__":
    main()
