"""Soak: memory over time of one worker under a steady, realistic load, and recovery time.

``make soak`` (default: 10 minutes at 600 events/s) runs a local Apache Kafka, one
``crm-pulse worker`` and the CRM simulator (deals created, worked, won or lost; activities
logged; leads created and contacted), with a short retention so that the hot state reaches
its steady size within the run. Every ``--sample-s`` seconds it prints the worker's RSS,
the tracked records and what retention evicted; at the end, the RSS growth over the last
half of the run (flat: < 10 %) and the memory per tracked record.

``--recovery 100000 1000000`` measures instead, for each size: an entity table of that many
realistic record states (made by the engine from simulated events, copied under new keys)
written to the changelog topic, a worker started on it, killed with SIGKILL and started
again; the time from the restart to ``/ready`` (recovery done), beside the same time for an
empty table measured in the same run, and the RSS per tracked record.

    make soak                                  # 10 min at 600 events/s
    make soak SOAK_ARGS="--minutes 3"          # shorter
    make soak SOAK_ARGS="--recovery 100000"    # recovery time and memory per record
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams` and `benchmarks` importable
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import psutil  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from benchmarks.worker import Worker  # noqa: E402
from streams.decode import RawRecord  # noqa: E402
from streams.judge import Engine  # noqa: E402
from streams.rules.loader import load_paths  # noqa: E402
from streams.rules.ruleset import RuleSet  # noqa: E402
from streams.runtime.broker import LocalKafka  # noqa: E402
from streams.runtime.topics import ensure_topics  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.simulator import DealSimulator  # noqa: E402

PARTITIONS = 4
MB = 1024 * 1024


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    p.add_argument("--rate", type=float, default=600.0, help="events per second (default 600)")
    p.add_argument("--sample-s", type=float, default=30.0, help="seconds between table rows")
    p.add_argument("--closed-s", type=float, default=60.0,
                   help="retention of closed records in the soak (s; default 60)")  # fmt: skip
    p.add_argument("--untouched-s", type=float, default=120.0,
                   help="retention of untouched records in the soak (s; default 120)")  # fmt: skip
    p.add_argument("--recovery", type=int, nargs="*", default=None,
                   help="measure recovery after kill -9 for these table sizes instead")  # fmt: skip
    p.add_argument("--bootstrap", default=None, help="use this Kafka instead of a local one")
    return p.parse_args(argv)


def rss(worker: Worker) -> int:
    assert worker.proc is not None
    return int(psutil.Process(worker.proc.pid).memory_info().rss)


async def _create(bootstrap: str, prefix: str) -> None:
    settings = Settings(
        broker=f"kafka://{bootstrap}", topic_prefix=prefix, topic_partitions=PARTITIONS
    )
    await ensure_topics(settings, bootstrap)
    # the owner-hit topic too (the worker would create it itself; created here, its metadata
    # is known before the first hit is sent)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if settings.frequency_topic not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(settings.frequency_topic, PARTITIONS, 1)])
    finally:
        await admin.close()


def produce_live(
    bootstrap: str, topic: str, rate: float, stop: threading.Event
) -> threading.Thread:
    """The simulator at ``rate`` events/s with wall-clock event times, until ``stop``."""

    async def run() -> None:
        sim = DealSimulator(seed=11)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        await producer.start()
        try:
            started, sent = time.monotonic(), 0
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate)
                for _ in range(due - sent):
                    key, value = sim.next_event(datetime.now(UTC))
                    await producer.send(topic, key=key, value=value)
                sent = max(sent, due)
                await asyncio.sleep(0.01)
            await producer.flush()
        finally:
            await producer.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def soak(args: argparse.Namespace, bootstrap: str, work: Path) -> None:
    prefix, app_id = "soak", "crm-pulse-soak"
    asyncio.run(_create(bootstrap, prefix))
    worker = Worker(bootstrap, prefix, app_id, REPO / "rules", work, {
        "CRM_PULSE_TOPIC_PARTITIONS": str(PARTITIONS),
        "CRM_PULSE_RETENTION_CLOSED_DAYS": str(args.closed_s / 86400.0),
        "CRM_PULSE_RETENTION_UNTOUCHED_DAYS": str(args.untouched_s / 86400.0),
        "CRM_PULSE_RETENTION_SWEEP_INTERVAL_S": "5",
        "CRM_PULSE_HOUSEKEEPING_INTERVAL_S": "2",
    }).start()  # fmt: skip
    idle_rss = rss(worker)
    stop = threading.Event()
    duration = args.minutes * 60.0
    log(f"soak: {args.minutes:g} min at {args.rate:g} events/s; retention closed "
        f"{args.closed_s:g} s, untouched {args.untouched_s:g} s; idle worker RSS "
        f"{idle_rss / MB:.1f} MB")  # fmt: skip
    log(f"{'t (s)':>7} {'RSS (MB)':>9} {'records':>9} {'events':>9} {'evicted':>9} "
        f"{'alerts':>8} {'B/record':>9}")  # fmt: skip
    producer = produce_live(bootstrap, f"{prefix}.events", args.rate, stop)
    samples: list[tuple[float, int, int, int]] = []
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            time.sleep(min(args.sample_s, max(0.0, duration - elapsed)))
            m = worker.metrics()
            t, now_rss = time.monotonic() - started, rss(worker)
            records = int(m.get("crm_pulse_tracked_records", 0))
            samples.append((t, now_rss, records, int(m.get("crm_pulse_events_total", 0))))
            per = (now_rss - idle_rss) / records if records else 0.0
            log(f"{t:7.0f} {now_rss / MB:9.1f} {records:9d} "
                f"{int(m.get('crm_pulse_events_total', 0)):9d} "
                f"{int(m.get('crm_pulse_evicted_records_total', 0)):9d} "
                f"{int(m.get('crm_pulse_alerts_total', 0)):8d} {per:9.0f}")  # fmt: skip
    finally:
        stop.set()
        producer.join(timeout=30)
        worker.stop()
    half = [s for s in samples if s[0] >= duration / 2]
    if len(half) >= 2:
        first, last = half[0][1], half[-1][1]
        growth = (last - first) / first * 100.0
        verdict = "flat" if growth < 10.0 else "GROWING"
        log(f"RSS over the last half: {first / MB:.1f} -> {last / MB:.1f} MB "
            f"({growth:+.1f} %): {verdict} (flat: < 10 %)")  # fmt: skip
        tracked = [s[2] for s in half]
        log(f"tracked records over the last half: {min(tracked)}..{max(tracked)}")
        rate = (half[-1][3] - half[0][3]) / max(1e-9, half[-1][0] - half[0][0])
        log(
            f"events applied over the last half: {rate:.0f}/s (offered {args.rate:g}/s)"
            + ("" if rate > 0.8 * args.rate else ": the worker fell behind, RSS not comparable")
        )


def template_states(count: int = 6000) -> list[tuple[str, dict[str, Any]]]:
    """Realistic record states: the engine's own, after simulated events (starter rules)."""
    loaded = load_paths([REPO / "rules"])
    engine = Engine(RuleSet.build(r.compiled for r in loaded.rules))
    table: dict[bytes, bytes] = {}
    sim = DealSimulator(seed=3)
    start = datetime.now(UTC) - timedelta(days=1)
    batch = [
        RawRecord("t", 0, i, key, value)
        for i, (key, value) in enumerate(sim.stream(start, timedelta(seconds=5), count))
    ]
    result = engine.process(batch, table.get)
    out = []
    for key, (_, blob) in result.writes.items():
        if blob is not None:
            out.append((key.decode().split(":", 1)[0], orjson.loads(blob)))
    return out


async def fill_changelog(bootstrap: str, topic: str, size: int) -> None:
    """``size`` record states under new keys, on the partition their key's events use."""
    templates = template_states()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50,
                                max_batch_size=1 << 20, compression_type=None)  # fmt: skip
    await producer.start()
    try:
        from aiokafka.partitioner import DefaultPartitioner

        partitioner = DefaultPartitioner()
        parts = list(range(PARTITIONS))
        builders: dict[int, Any] = {}
        futures = []
        now = time.time()
        for i in range(size):
            entity, state = templates[i % len(templates)]
            entity_id = f"R-{i:08d}"
            p = partitioner(entity_id.encode(), parts, parts)
            state = {**state, "p": p, "q": [p, 0, now]}
            key, value = f"{entity}:{entity_id}".encode(), orjson.dumps(state)
            batch = builders.get(p)
            if batch is None:
                batch = builders[p] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=p))
                batch = builders[p] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for p, batch in builders.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def timed_restart(worker: Worker) -> float:
    """kill -9, start again: seconds from the new process to ``/ready``."""
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    worker.proc = None
    started = time.monotonic()
    worker.start(ready_timeout=1800.0)
    return time.monotonic() - started


def recovery(args: argparse.Namespace, bootstrap: str, work: Path) -> None:
    rows = []
    for size in [0, *args.recovery]:
        prefix, app_id = f"rec{size}", f"crm-pulse-rec{size}"
        asyncio.run(_create(bootstrap, prefix))
        worker = Worker(bootstrap, prefix, app_id, REPO / "rules", work,
                        {"CRM_PULSE_TOPIC_PARTITIONS": str(PARTITIONS)})  # fmt: skip
        worker.start()  # creates the changelog topic
        if size:
            worker.stop()
            filled = time.monotonic()
            asyncio.run(fill_changelog(bootstrap, worker.changelog_topic, size))
            log(f"{size} record states written to the changelog in "
                f"{time.monotonic() - filled:.1f} s")  # fmt: skip
            worker.start(ready_timeout=1800.0)
        tracked = int(worker.metrics().get("crm_pulse_tracked_records", 0))
        seconds = timed_restart(worker)
        time.sleep(3.0)  # the gauges refresh every few seconds
        after = int(worker.metrics().get("crm_pulse_tracked_records", 0))
        memory = rss(worker)
        worker.stop()
        rows.append((size, tracked, after, seconds, memory))
        log(f"table {size}: {after} records recovered, kill -9 -> /ready {seconds:.1f} s, "
            f"RSS {memory / MB:.0f} MB")  # fmt: skip
    base_rss = rows[0][4]
    log(f"\n{'records':>9} {'recovered':>10} {'kill->ready (s)':>16} {'RSS (MB)':>9} "
        f"{'B/record':>9}")  # fmt: skip
    for size, _, after, seconds, memory in rows:
        per = (memory - base_rss) / after if after else 0.0
        log(f"{size:9d} {after:10d} {seconds:16.1f} {memory / MB:9.0f} {per:9.0f}")
    log("(row 0: an empty table, the baseline of the same run; B/record: RSS above it)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crm-pulse-soak-") as tmp:
        work = Path(tmp)
        job = recovery if args.recovery else soak
        if args.bootstrap:
            job(args, args.bootstrap, work)
            return 0
        settings = Settings()
        heap = "2g" if args.recovery else "1g"
        with LocalKafka(cache_dir=settings.cache_dir, version=settings.kafka_version,
                        heap=heap, work_dir=work / "kafka") as broker:  # fmt: skip
            log(f"local Kafka on {broker.bootstrap}")
            job(args, broker.bootstrap, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
