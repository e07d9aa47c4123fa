"""The benchmark's latency phase alone, with *when* the slow alerts happened.

    python benchmarks/latency_timeline.py --rate 2700                        # full pack, 10 s
    python benchmarks/latency_timeline.py --rate 2700 \\
        --worker-env CRM_PULSE_KPI_PUBLISH_INTERVAL_S=3600                    # no KPI rounds

The same measurement as the latency phase of ``benchmarks/run.py`` (a fresh worker, a paced
producer stamping each record with its send time, latency = alert timestamp - timestamp of
the latest event it names), without the throughput runs before it. It prints the
percentiles, then the worst latency of the alerts caused by the events sent in each
``--bucket-ms`` of the paced load, for the buckets above ``--show-above`` ms: periodic
stalls (a publication round, a sweep, a collection) show as runs of slow buckets at a
regular interval. ``--split`` has the broker stamp the input with its append time and
splits each latency into the load's own send -> append and the worker's append -> alert.
The broker's and the worker's files live in a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams` and `benchmarks` importable
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from benchmarks import profile_summary, report  # noqa: E402
from benchmarks.cpu import CpuMeter  # noqa: E402
from benchmarks.events import Workload, generate  # noqa: E402
from benchmarks.kafka_io import kafka_for, produce_paced, read_topic  # noqa: E402
from benchmarks.modes import MODES, prepare  # noqa: E402
from benchmarks.profile_worker import Recording  # noqa: E402
from benchmarks.run import create_topics, worker_env  # noqa: E402
from benchmarks.worker import Worker, watch  # noqa: E402


def log(message: str) -> None:
    print(f"[latency {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=2700.0, help="events/s offered (2700)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of the paced load")
    p.add_argument("--mode", choices=MODES, default="full")
    p.add_argument("--owners", type=int, default=200)
    p.add_argument("--seed", type=int, default=1007)
    p.add_argument("--bucket-ms", type=float, default=250.0)
    p.add_argument("--show-above", type=float, default=100.0, help="ms (100)")
    p.add_argument("--drain", type=float, default=120.0, help="s the worker may catch up")
    p.add_argument("--bootstrap", help="a running broker instead of a local one")
    p.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--by-rule", action="store_true", help="percentiles per rule as well")
    p.add_argument(
        "--split", action="store_true",
        help="stamp the input with the broker's append time and split each latency into\n"
        "send -> broker append (the load's own producer) and append -> alert (the worker)",
    )  # fmt: skip
    p.add_argument(
        "--profile", type=Path, metavar="TXT",
        help="sample the worker with py-spy while the load is offered and write the\n"
        "summary (benchmarks/profile_summary.py) to this file",
    )  # fmt: skip
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="crm-pulse-latency-"))
    try:
        return measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> int:
    with kafka_for(args.bootstrap, work, log) as bootstrap:
        mode = prepare(REPO / "rules", work)[args.mode]
        prefix = f"latt{uuid.uuid4().hex[:6]}"
        asyncio.run(create_topics(bootstrap, prefix, 4))
        if args.split:
            asyncio.run(stamp_on_append(bootstrap, f"{prefix}.events"))
        count = int(args.rate * args.seconds)
        deals = max(1000, count // 10)  # as the benchmark's latency phase
        workload = generate(count, deals=deals, owners=args.owners, seed=args.seed)
        env = {**mode.env, **worker_env(args.worker_env)}
        worker = Worker(bootstrap, prefix, f"latt-{uuid.uuid4().hex[:8]}", mode.rules_dir,
                        work, extra_env=env)  # fmt: skip
        worker.start()
        try:
            log(f"offering {count} events at {args.rate:g}/s over {deals} deals ({args.mode})")
            spy = None
            if args.profile:  # the flame graph beside the summary
                assert worker.proc is not None
                spy = Recording(worker.proc.pid, args.profile.with_suffix(".speedscope.json"))
            assert worker.proc is not None
            meter = CpuMeter(worker.proc.pid)
            paced = asyncio.run(produce_paced(bootstrap, f"{prefix}.events", workload, args.rate))
            cpu = meter.read()
            if spy is not None:  # the paced load only, not the drain
                spy.stop()
                head = f"live worker ({args.mode}) at {args.rate:g} events/s"
                table = profile_summary.summarise(spy.profiles(), 25)
                args.profile.write_text(head + "\n" + table + "\n")
                log(f"profile of the paced load: {args.profile} (flame graph: {spy.flame})")
            progress = watch(worker, paced.sent, args.drain)
            kpis = worker.get_json("/kpis/status")
        finally:
            worker.stop()
        alerts = asyncio.run(read_topic(bootstrap, f"{prefix}.alerts"))
        appended = (
            asyncio.run(appended_at(bootstrap, f"{prefix}.events", workload)) if args.split else {}
        )
    start = min(paced.sent_at_ms.values())
    rows: list[tuple[float, float]] = []
    to_broker: list[float] = []
    in_worker: list[float] = []
    by_rule: dict[str, list[float]] = {}
    for record in alerts:
        doc = orjson.loads(record.value)
        causes = [i for i in doc.get("event_ids", []) if i in paced.sent_at_ms]
        if not causes:
            continue
        last = max(causes, key=paced.sent_at_ms.__getitem__)  # the latest event it names
        sent = paced.sent_at_ms[last]
        rows.append((float(sent - start), float(record.timestamp - sent)))
        by_rule.setdefault(str(doc.get("rule_id")), []).append(rows[-1][1])
        if last in appended:
            to_broker.append(float(appended[last] - sent))
            in_worker.append(float(record.timestamp - appended[last]))
    summary = report.latency_summary([latency for _, latency in rows])
    kept_up = progress.last_n >= paced.sent
    print(f"offered {paced.offered_eps:,.0f} events/s, {len(alerts)} alerts, kept up: {kept_up}")
    print("p50 {p50_ms} ms, p95 {p95_ms} ms, p99 {p99_ms} ms, max {max_ms} ms".format(**summary))
    print(f"  CPU over the load, in cores: worker {cpu['worker_cores']}, everything else "
          f"{cpu['others_cores']} (broker, the load's producer), of {cpu['cores']:g}")  # fmt: skip
    batches = progress.metrics.get("crm_pulse_batches_total", 0.0)
    print(
        f"  the worker judged {paced.sent} events in {batches:,.0f} chunks "
        f"({paced.sent / max(batches, 1):,.0f} per chunk) and sent "
        f"{kpis['messages_sent']:,} KPI facts messages ({kpis['messages_sent'] / paced.sent:.2f} "
        "per event)"
    )
    if args.split:
        for name, part in (("send -> broker append", to_broker), ("append -> alert", in_worker)):
            one = report.latency_summary(part)
            print(f"  {name}: p50 {one['p50_ms']} ms, p95 {one['p95_ms']} ms, "
                  f"p99 {one['p99_ms']} ms, max {one['max_ms']} ms")  # fmt: skip
        sends = sorted(paced.sent_at_ms.values())
        gaps = sorted(((b - a, a - start) for a, b in itertools.pairwise(sends)),
                      reverse=True)[:5]  # fmt: skip
        print("  the load's longest pauses between two sends (ms at s): "
              + " ".join(f"{gap}@{at / 1000:.2f}" for gap, at in gaps))  # fmt: skip
    if args.by_rule:
        for rule, latencies in sorted(by_rule.items(), key=lambda kv: -len(kv[1])):
            one = report.latency_summary(latencies)
            print(f"  {rule}: {len(latencies)} alerts, p50 {one['p50_ms']} ms, "
                  f"p99 {one['p99_ms']} ms, max {one['max_ms']} ms")  # fmt: skip
    slow = report.slow_buckets(rows, args.bucket_ms, args.show_above)
    print(f"events sent at (s) -> worst latency of their alerts (ms), above {args.show_above:g}:")
    print("  " + (" ".join(f"{t:.2f}:{v:.0f}" for t, v in slow) or "none"))
    return 0


async def stamp_on_append(bootstrap: str, topic: str) -> None:
    """Have the broker stamp ``topic``'s records with their append time."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"message.timestamp.type": "LogAppendTime"}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def appended_at(bootstrap: str, topic: str, workload: Workload) -> dict[str, int]:
    """Event id -> the broker's append time (ms) of the records of ``topic`` that carry
    one of ``workload``'s events (its invalid records carry none)."""
    ids = {value: i for value, i in zip(workload.values, workload.event_ids, strict=True) if i}
    out: dict[str, int] = {}
    for record in await read_topic(bootstrap, topic):
        event_id = ids.get(record.value)
        if event_id is not None:
            out[event_id] = int(record.timestamp)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
