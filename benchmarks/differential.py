"""The differential check: a fixed recorded stream through a real worker, its alerts and KPI
snapshots compared with a golden file recorded before a change.

    python benchmarks/differential.py record --out benchmarks/golden/base.jsonl.gz
    python benchmarks/differential.py compare benchmarks/golden/base.jsonl.gz
    python benchmarks/differential.py compare GOLDEN --candidate OTHER.jsonl.gz  # no run

The stream is the benchmark's workload (``benchmarks/events.py``, the project's simulator)
with a fixed seed, and every record's Kafka timestamp is its event's ``occurred_at``
(a broken record takes the previous event's), so the time a change is judged at is part of
the recording. A real ``crm-pulse worker`` subprocess reads it on a local broker with the
benchmark's rules (``rules/`` plus the parity rules it lacks) and the full KPI catalog.
Once every event is handled and the worker's group has committed the end of its input and
internal topics, and the alert and KPI topics have not grown for ``--settle`` seconds, the
worker stops and both topics are read back (canonical form: ``benchmarks/golden.py``).

Wall-clock housekeeping would make a run depend on when it runs, so it is switched off:
retention (``CRM_PULSE_RETENTION_*_DAYS=0``: with event-time timestamps in the past, every
record would be evicted at the first sweep, whenever that comes). The notification budget
is off by default (no digest). ``compare`` exits 1 on any difference and prints the counts
per kind and the first ``--first`` of them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams` and `benchmarks` importable
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402

from benchmarks import golden  # noqa: E402
from benchmarks.events import START, Workload, generate  # noqa: E402
from benchmarks.kafka_io import end_offsets, kafka_for, produce_fast, read_topic  # noqa: E402
from benchmarks.rulepack import assemble  # noqa: E402
from benchmarks.worker import Worker, watch  # noqa: E402
from streams.kpis.catalog import default_catalog  # noqa: E402
from streams.runtime.topics import topic_specs  # noqa: E402
from streams.settings import Settings  # noqa: E402

#: Settings of the recorded run beside the defaults (see the module docstring).
WORKER_ENV = {
    "CRM_PULSE_RETENTION_CLOSED_DAYS": "0",
    "CRM_PULSE_RETENTION_UNTOUCHED_DAYS": "0",
    "CRM_PULSE_KPI_PUBLISH_MAX_SHARE": "1",
}


def log(message: str) -> None:
    print(f"[differential {time.strftime('%H:%M:%S')}] {message}", flush=True)


def event_times_ms(workload: Workload) -> list[int]:
    """Each record's ``occurred_at`` in epoch ms (a broken record: the previous one's)."""
    out: list[int] = []
    last = int(START.timestamp() * 1000)
    for value in workload.values:
        try:
            doc = orjson.loads(value)
            last = int(datetime.fromisoformat(doc["occurred_at"]).timestamp() * 1000)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            pass
        out.append(last)
    return out


def fingerprint(workload: Workload, stamps: list[int]) -> str:
    digest = hashlib.sha256()
    for key, value, ts in zip(workload.keys, workload.values, stamps, strict=True):
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
        digest.update(ts.to_bytes(8, "big"))
    return digest.hexdigest()


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def stacks(worker: Worker) -> str:
    """``py-spy dump`` of the worker (the bench extra has py-spy), to say where it stalls."""
    spy = Path(sys.executable).parent / "py-spy"
    if worker.proc is None or not spy.exists():
        return "(no py-spy)"
    out = subprocess.run(
        [str(spy), "dump", "--pid", str(worker.proc.pid)], capture_output=True, text=True
    )
    return out.stdout + out.stderr


async def committed_behind(bootstrap: str, group: str, topics: list[str]) -> int:
    """Records of ``topics`` the consumer group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    offsets = {(tp.topic, tp.partition): meta for tp, meta in committed.items()}
    behind = 0
    for topic in topics:
        for partition, end in (await end_offsets(bootstrap, topic)).items():
            meta = offsets.get((topic, partition))
            behind += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return behind


async def topic_sizes(bootstrap: str, topics: list[str]) -> int:
    return sum([sum((await end_offsets(bootstrap, t)).values()) for t in topics])


def settle(
    bootstrap: str, worker: Worker, settings: Settings, quiet_s: float, budget: float
) -> None:
    """Wait until the worker's group has committed its input and internal topics to their
    end and the alert and KPI topics stayed the same size for ``quiet_s`` seconds."""
    consumed = [settings.events_topic, settings.kpi_facts_topic, settings.frequency_topic]
    outputs = [settings.alerts_topic, settings.kpis_topic]
    deadline = time.monotonic() + budget
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if worker.proc is None or worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited while settling:\n{worker.log_tail()}")
        behind = asyncio.run(committed_behind(bootstrap, worker.app_id, consumed))
        size = asyncio.run(topic_sizes(bootstrap, outputs))
        if size != last or behind:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(1.0)
    raise RuntimeError(f"outputs did not settle within {budget:g} s (behind: {behind})")


async def create_topics(settings: Settings, bootstrap: str) -> None:
    """The worker's topics, those that delete by time kept forever: the records carry their
    event time (January 2026), which the broker's 7-day retention would delete within a
    minute, mid-run. (Producing before the leaders settle only makes the producer retry;
    :func:`check_recorded` then proves the topic holds the stream in order.)"""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, num_partitions=parts, replication_factor=1,
                         topic_configs={**config, "retention.ms": "-1"})
                for name, (parts, config) in topic_specs(settings).items()
            ]
        )  # fmt: skip
    finally:
        await admin.close()


def check_recorded(bootstrap: str, topic: str, workload: Workload, stamps: list[int]) -> None:
    """The topic holds the stream exactly: per partition, the same records in the same
    order with the same timestamps (a producer retry must not have reordered anything)."""
    expected: dict[int, list[tuple[bytes, bytes, int]]] = {}
    parts = list(range(len(asyncio.run(end_offsets(bootstrap, topic)))))
    partitioner = DefaultPartitioner()
    for key, value, ts in zip(workload.keys, workload.values, stamps, strict=True):
        expected.setdefault(partitioner(key, parts, parts), []).append((key, value, ts))
    got: dict[int, list[tuple[bytes, bytes, int]]] = {}
    records = asyncio.run(read_topic(bootstrap, topic))
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        got.setdefault(r.partition, []).append((r.key, r.value, r.timestamp))
    if got != expected:
        raise RuntimeError(f"{topic} does not hold the recorded stream in order")


def run_once(args: argparse.Namespace, bootstrap: str, work: Path) -> golden.Outputs:
    workload = generate(args.events, deals=args.deals, owners=args.owners, seed=args.seed)
    stamps = event_times_ms(workload)
    rules_dir = work / "rules"
    rule_ids, _ = assemble(REPO / "rules", rules_dir)
    prefix = f"diff{uuid.uuid4().hex[:6]}"
    settings = Settings(
        broker=f"kafka://{bootstrap}", topic_prefix=prefix, topic_partitions=args.partitions
    )
    asyncio.run(create_topics(settings, bootstrap))
    asyncio.run(produce_fast(bootstrap, settings.events_topic, workload, stamps))
    check_recorded(bootstrap, settings.events_topic, workload, stamps)
    log(f"produced {len(workload)} events to {settings.events_topic}, checked")
    env = {**WORKER_ENV, "CRM_PULSE_TOPIC_PARTITIONS": str(args.partitions)}
    worker = Worker(bootstrap, prefix, f"diff-{uuid.uuid4().hex[:8]}", rules_dir, work, env)
    started = time.monotonic()
    worker.start()
    try:
        progress = watch(worker, len(workload), args.budget)
        if progress.last_n < len(workload):
            counters = {k: v for k, v in progress.metrics.items() if k.endswith("_total")}
            log("worker stalled; its stacks:\n" + stacks(worker))
            raise RuntimeError(
                f"worker handled {progress.last_n} of {len(workload)} events in {args.budget:g} s"
                f"\ncounters: {counters}\n{worker.log_tail()}"
            )
        log(f"worker handled {progress.last_n} events in {time.monotonic() - started:.1f} s")
        settle(bootstrap, worker, settings, args.settle, args.budget)
    finally:
        worker.stop()
    alerts, conflicts = golden.alerts_of(
        r.value for r in asyncio.run(read_topic(bootstrap, settings.alerts_topic))
    )
    kpis = golden.final_kpis(
        (r.key, r.value) for r in asyncio.run(read_topic(bootstrap, settings.kpis_topic))
    )
    header: dict[str, Any] = {
        "events": args.events,
        "seed": args.seed,
        "deals": args.deals,
        "owners": args.owners,
        "partitions": args.partitions,
        "stream_sha256": fingerprint(workload, stamps),
        "rules": sorted(rule_ids),
        "kpis": sorted(default_catalog().ids),
        "worker_env": env,
        "revision": git_revision(),
        "kpi_excluded_fields": list(golden.KPI_EXCLUDED),
    }
    log(f"{len(alerts)} alerts, {len(kpis)} KPI keys")
    return golden.Outputs(header, alerts, kpis, conflicts)


def with_broker(args: argparse.Namespace) -> golden.Outputs:
    with tempfile.TemporaryDirectory(prefix="crm-pulse-differential-") as tmp:
        work = Path(tmp)
        with kafka_for(args.bootstrap, work, log) as bootstrap:
            return run_once(args, bootstrap, work)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run the worker on the stream and write its outputs")
    rec.add_argument("--out", type=Path, required=True, help="file to write (.jsonl.gz)")
    cmp_ = sub.add_parser("compare", help="run (or read --candidate) and compare with GOLDEN")
    cmp_.add_argument("golden", type=Path, help="the golden file")
    cmp_.add_argument("--candidate", type=Path, help="compare this file instead of running")
    cmp_.add_argument("--keep", type=Path, help="also write this run's outputs here")
    cmp_.add_argument("--first", type=int, default=20, help="differences printed (20)")
    for sp in (rec, cmp_):
        sp.add_argument("--events", type=int, default=50_000, help="stream length (50000)")
        sp.add_argument("--deals", type=int, default=5_000, help="open deals (5000)")
        sp.add_argument("--owners", type=int, default=200, help="sales reps (200)")
        sp.add_argument("--seed", type=int, default=7)
        sp.add_argument("--partitions", type=int, default=1, help="partitions per topic (1)")
        sp.add_argument("--budget", type=float, default=600.0, help="seconds per phase (600)")
        sp.add_argument("--settle", type=float, default=15.0, help="quiet seconds at the end (15)")
        sp.add_argument("--bootstrap", help="use this running broker instead of a local one")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # leadership of fresh topics settles while we produce; aiokafka retries and says so
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    if args.command == "record":
        outputs = with_broker(args)
        golden.write(args.out, outputs)
        log(f"written to {args.out}")
        return 0
    expected = golden.read(args.golden)
    if args.candidate is not None:
        now = golden.read(args.candidate)
    else:
        for name in ("events", "deals", "owners", "seed", "partitions"):
            if name in expected.header:  # the golden file says which stream it recorded
                setattr(args, name, expected.header[name])
        now = with_broker(args)
        if args.keep is not None:
            golden.write(args.keep, now)
    diffs = golden.compare(expected, now)
    print(golden.summary(expected, now, diffs, args.first))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
