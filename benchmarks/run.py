"""CRM Pulse benchmark: throughput and alert latency, side by side with the limit (a bare
aiokafka consumer) and a peer (the same job in Quix Streams), in one run on a local broker.

    python benchmarks/run.py            # 500k events, median of 3 runs
    python benchmarks/run.py --quick    # 50k events, 1 run (for developers)

Prints one table and writes it as JSON to ``benchmarks/results/<timestamp>.json``.
See docs/performance.md for what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams` and `benchmarks` importable
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.cpu import CpuMeter, wait_quiet  # noqa: E402
from benchmarks.events import Workload, generate  # noqa: E402
from benchmarks.kafka_io import (  # noqa: E402
    kafka_for,
    latest_per_key,
    produce_fast,
    produce_paced,
    read_topic,
)
from benchmarks.limit import measure_limit  # noqa: E402
from benchmarks.modes import MODES, Mode, prepare  # noqa: E402
from benchmarks.worker import Worker, watch  # noqa: E402
from streams.runtime.topics import ensure_topics  # noqa: E402
from streams.settings import Settings  # noqa: E402


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=None, help="events produced (default 500000)")
    p.add_argument("--repeat", type=int, default=None, help="runs per measurement, median (3)")
    p.add_argument("--quick", action="store_true", help="50k events, 1 run, short latency phase")
    p.add_argument(
        "--pulse-events",
        type=int,
        default=None,
        help="measure CRM Pulse on the first M events only (default: all)",
    )
    p.add_argument(
        "--pulse-budget",
        type=float,
        default=180.0,
        help="seconds a CRM Pulse run may take from its first event (180)",
    )
    p.add_argument("--peer-budget", type=float, default=180.0, help="same for the peer (180)")
    p.add_argument("--limit-budget", type=float, default=120.0, help="same for the limit (120)")
    p.add_argument("--deals", type=int, default=100_000, help="open deals simulated (100000)")
    p.add_argument("--owners", type=int, default=200, help="sales reps simulated (200)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="offered load of the latency phase, events/s (default: --latency-share of the "
        "full pack's measured capacity)",
    )
    p.add_argument(
        "--latency-share",
        type=float,
        default=0.5,
        help="share of the full pack's measured events/s offered in the latency phase (0.5)",
    )
    p.add_argument(
        "--latency-seconds",
        type=float,
        default=None,
        help="duration of the paced load (10; quick: 5)",
    )
    p.add_argument(
        "--latency-drain",
        type=float,
        default=120.0,
        help="seconds the worker may take to catch up after the paced load (120)",
    )
    p.add_argument(
        "--bootstrap",
        default=None,
        help="use this running broker (host:port) instead of starting a local one",
    )
    p.add_argument("--skip-peer", action="store_true", help="do not run the Quix Streams peer")
    p.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra CRM_PULSE_* variable for the worker (repeatable)",
    )
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--note", default="", help="free text stored in the JSON (e.g. 'under load')")
    args = p.parse_args(argv)
    args.events = args.events or (50_000 if args.quick else 500_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.latency_seconds = args.latency_seconds or (5.0 if args.quick else 10.0)
    args.pulse_events = min(args.pulse_events or args.events, args.events)
    return args


def worker_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("CRM_PULSE_"):
            raise SystemExit(f"--worker-env wants CRM_PULSE_KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


async def create_topics(bootstrap: str, prefix: str, partitions: int) -> Settings:
    settings = Settings(
        broker=f"kafka://{bootstrap}", topic_prefix=prefix, topic_partitions=partitions
    )
    await ensure_topics(settings, bootstrap)
    return settings


def measure_pulse(
    bootstrap: str,
    prefix: str,
    mode: Mode,
    work: Path,
    expected: int,
    budget: float,
    env: dict[str, str],
    index: int,
    state_size: bool,
) -> dict[str, Any]:
    worker = Worker(
        bootstrap,
        prefix,
        f"bench-{mode.name}-{uuid.uuid4().hex[:8]}",
        mode.rules_dir,
        work,
        extra_env={**mode.env, **env},
    )
    what = f"CRM Pulse {mode.name} run {index}"
    started = time.monotonic()
    worker.start()
    log(f"{what}: worker ready in {time.monotonic() - started:.1f} s")
    try:
        progress = watch(worker, expected, budget)
        rss = worker.peak_rss()
    finally:
        worker.stop()
    m = progress.metrics
    seconds = progress.seconds
    processed_in_window = progress.last_n - progress.first_n
    if seconds <= 0:  # all done before the second sample: count from the first sample
        seconds, processed_in_window = 0.5, progress.last_n
    batches = m.get("crm_pulse_batch_size_count", 0.0)
    run = report.run_figure(
        expected=expected,
        processed=progress.last_n,
        seconds=seconds,
        budget_s=budget,
        alerts=int(m.get("crm_pulse_alerts_total", 0.0)),
        invalid=int(m.get("crm_pulse_invalid_events_total", 0.0)),
        duplicates=int(m.get("crm_pulse_duplicate_events_total", 0.0)),
        avg_batch_size=round(m.get("crm_pulse_batch_size_sum", 0.0) / batches, 1)
        if batches
        else None,
        peak_rss_bytes=rss,
    )
    run["eps"] = round(processed_in_window / seconds, 1) if seconds > 0 else 0.0
    if state_size:
        records = asyncio.run(read_topic(bootstrap, worker.changelog_topic))
        latest = latest_per_key(records)
        deals = {k: v for k, v in latest.items() if k.startswith(b"deal:")}
        run["changelog_records"] = len(records)
        run["tracked_deals"] = len(deals)
        run["state_bytes_per_deal"] = (
            round(sum(len(k) + len(v) for k, v in deals.items()) / len(deals), 1) if deals else None
        )
    log(f"{what}: {report.describe_run(run)}")
    return run


def latency_rate(args: argparse.Namespace, capacity: float | None) -> tuple[float, str]:
    """The offered load of the latency phase and where it comes from."""
    if args.latency_rate is not None:
        return args.latency_rate, "--latency-rate"
    if not capacity:
        return 1000.0, "fallback: no capacity measured"
    return (
        max(50.0, round(capacity * args.latency_share)),
        f"{args.latency_share:g} x the full pack's measured {capacity:,.0f} events/s",
    )


def measure_latency(
    bootstrap: str,
    mode: Mode,
    work: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    rate: float,
    rate_source: str,
) -> dict[str, Any]:
    prefix = f"benchlat{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topics(bootstrap, prefix, 4))
    count = int(rate * args.latency_seconds)
    deals = max(1000, min(args.deals, count // 10))
    workload = generate(count, deals=deals, owners=args.owners, seed=args.seed + 1000)
    worker = Worker(
        bootstrap,
        prefix,
        f"bench-lat-{uuid.uuid4().hex[:8]}",
        mode.rules_dir,
        work,
        extra_env={**mode.env, **env},
    )
    worker.start()
    try:
        log(f"latency: offering {count} events at {rate:g}/s ({rate_source}) over {deals} deals")
        assert worker.proc is not None
        meter = CpuMeter(worker.proc.pid)
        paced = asyncio.run(produce_paced(bootstrap, f"{prefix}.events", workload, rate))
        cpu = meter.read()  # over the paced load (the load's producer is in "others")
        progress = watch(worker, paced.sent, args.latency_drain)
    finally:
        worker.stop()
    log(f"latency: CPU over the load, in cores: {cpu}")
    alerts = asyncio.run(read_topic(bootstrap, f"{prefix}.alerts"))
    start = min(paced.sent_at_ms.values(), default=0)
    rows: list[tuple[float, float]] = []  # (sent, ms after the load's start; latency, ms)
    for record in alerts:
        doc = orjson.loads(record.value)
        causes = [paced.sent_at_ms[i] for i in doc.get("event_ids", []) if i in paced.sent_at_ms]
        if causes:
            rows.append((float(max(causes) - start), float(record.timestamp - max(causes))))
    summary = report.latency_summary([latency for _, latency in rows])
    # when the slow alerts' events were sent: a start-up spell, a periodic stall, queueing
    worst = sorted(report.slow_buckets(rows, 500.0, 0.0), key=lambda b: -b[1])[:5]
    log(f"latency: p99 {summary['p99_ms']} ms; the slowest half-seconds of the load (s: worst ms) "
        + " ".join(f"{at:g}: {ms:.0f}" for at, ms in worst))  # fmt: skip
    return {
        "mode": mode.name,
        "target_eps": rate,
        "rate_source": rate_source,
        "offered_eps": round(paced.offered_eps, 1),
        "events": paced.sent,
        "deals": deals,
        "processed": progress.last_n,
        "kept_up": progress.last_n >= paced.sent,
        # events still queued at the end of the drain have no alert yet: the percentiles
        # then leave out the slowest ones and are a lower bound
        "lower_bound": progress.last_n < paced.sent,
        "drain_budget_s": args.latency_drain,
        "alerts": len(alerts),
        "cpu": cpu,
        "slowest_half_seconds": [[at, ms] for at, ms in worst],
        **summary,
    }


def median_latency(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The latency phase run ``--repeat`` times (same load, a fresh worker each): the run
    whose p99 is the median (of an even count, the worse middle one), with every run's
    percentiles under ``runs``."""
    ranked = sorted(runs, key=lambda r: (r.get("p99_ms") is None, r.get("p99_ms") or 0.0))
    keep = ("offered_eps", "count", "kept_up", "p50_ms", "p95_ms", "p99_ms", "max_ms")
    return {
        **ranked[len(ranked) // 2],  # of an even count, the worse of the middle two
        "runs": [{k: r.get(k) for k in keep} for r in runs],
        "of_runs": len(runs),
    }


def run_job(
    what: str, module: str, args: list[str], work: Path, group: str, timeout: float
) -> dict[str, Any]:
    """Run ``python -m <module> <args> --out <work>/<group>.json`` from the repository, its
    output logged to ``<work>/<group>.log``; returns the JSON it wrote, or raises with the
    end of its log."""
    out = work / f"{group}.json"
    cmd = [sys.executable, "-m", module, *args, "--out", str(out)]
    with open(work / f"{group}.log", "wb") as logf:
        proc = subprocess.run(
            cmd, cwd=REPO, stdout=logf, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    if proc.returncode != 0 or not out.exists():
        tail = (work / f"{group}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{what} job failed ({proc.returncode}):\n{tail}")
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


def measure_peer(
    bootstrap: str,
    topic: str,
    alerts_topic: str,
    work: Path,
    expected: int,
    budget: float,
    index: int,
    state_size: bool,
) -> dict[str, Any]:
    group = f"bench-quix-{uuid.uuid4().hex[:8]}"
    args = [
        "--bootstrap", bootstrap, "--topic", topic, "--alerts-topic", alerts_topic,
        "--group", group, "--state-dir", str(work / group), "--expect", str(expected),
        "--budget", str(budget),
    ]  # fmt: skip
    got = run_job("peer", "benchmarks.peers.quix_job", args, work, group, budget + 180)
    run = report.run_figure(
        expected=expected,
        processed=got["processed"],
        seconds=got["seconds"],
        budget_s=budget,
        alerts=got["alerts"],
        invalid=got["invalid"],
        duplicates=got["duplicates"],
        peak_rss_bytes=got["peak_rss_bytes"],
    )
    if state_size:  # Quix names its changelog changelog__<group>--<topic>--<store>
        records = asyncio.run(read_topic(bootstrap, f"changelog__{group}--{topic}--default"))
        latest = {k: v for k, v in latest_per_key(records).items() if not k.startswith(b"broken")}
        run["changelog_records"] = len(records)
        run["tracked_deals"] = len(latest)
        run["state_bytes_per_deal"] = (
            round(sum(len(k) + len(v) for k, v in latest.items()) / len(latest), 1)
            if latest
            else None
        )
    log(f"peer run {index}: {report.describe_run(run)}")
    return run


def measure_floor(
    bootstrap: str, topic: str, work: Path, expected: int, budget: float, index: int
) -> dict[str, Any]:
    """The Faust floor (``benchmarks/faust_floor.py``): a Faust app built like the worker
    that only validates and acks, in a subprocess with a fresh consumer group."""
    group = f"bench-floor-{uuid.uuid4().hex[:8]}"
    args = [
        "--bootstrap", bootstrap, "--topic", topic, "--group", group,
        "--expected", str(expected), "--budget", str(budget),
    ]  # fmt: skip
    got = run_job("floor", "benchmarks.faust_floor", args, work, group, budget + 120)
    run = report.run_figure(
        expected=expected,
        processed=got["processed"],
        seconds=got["seconds"],
        budget_s=budget,
        valid=got["valid"],
    )
    log(f"floor run {index}: {report.describe_run(run)}")
    return run


def peer_version() -> str:
    try:
        return importlib.metadata.version("quixstreams")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def section(runs: list[dict[str, Any]], events: int, **extra: Any) -> dict[str, Any]:
    return {"events": events, "runs": runs, "median_eps": report.median_eps(runs), **extra}


def machine() -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    load = os.getloadavg()
    return {
        "cpus": cpus,
        "loadavg_start": [round(x, 2) for x in load],
        "under_load": load[0] > 0.5 * cpus,
    }


def run(args: argparse.Namespace, bootstrap: str, work: Path) -> dict[str, Any]:
    started = datetime.now(UTC)
    info = machine()
    env = worker_env(args.worker_env)
    modes = prepare(REPO / "rules", work)
    for mode in modes.values():
        log(f"{mode.name}: rules {mode.rules}; KPIs {mode.kpis}")
    if modes["full"].parity_added:
        log(f"full: parity rules added to rules/: {modes['full'].parity_added}")

    t = time.perf_counter()
    workload = generate(args.events, deals=args.deals, owners=args.owners, seed=args.seed)
    log(
        f"generated {len(workload)} events ({workload.avg_bytes:.0f} B avg) "
        f"in {time.perf_counter() - t:.1f} s"
    )
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    settings = asyncio.run(create_topics(bootstrap, prefix, 4))
    topic = settings.events_topic
    produce_s = asyncio.run(produce_fast(bootstrap, topic, workload))
    log(f"produced to {topic} in {produce_s:.1f} s ({len(workload) / produce_s:,.0f} ev/s)")
    pulse_workload = workload
    if args.pulse_events < args.events:
        pulse_workload = Workload(
            workload.keys[: args.pulse_events],
            workload.values[: args.pulse_events],
            workload.event_ids[: args.pulse_events],
        )
        log(f"CRM Pulse is measured on the first {args.pulse_events} events only")

    limit_runs = []
    for i in range(1, args.repeat + 1):
        figure = asyncio.run(measure_limit(bootstrap, topic, args.events, args.limit_budget))
        log(f"limit run {i}: {report.describe_run(figure)}")
        limit_runs.append(figure)

    floor_runs = [
        measure_floor(bootstrap, topic, work, args.events, args.limit_budget, i)
        for i in range(1, args.repeat + 1)
    ]

    # the two modes alternate, so that a slow spell of the machine hits both alike. Each
    # run gets its own topics (the same events): the first worker on a prefix seeds its
    # rules topic, which every later worker on it would then read instead of its own
    # rules, and the internal topics (KPI facts, owner counts) would carry a run's records
    # into the next one.
    pulse_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in MODES}
    for i in range(1, args.repeat + 1):
        for name in MODES:
            run_prefix = f"{prefix}{name[0]}{i}"
            run_settings = asyncio.run(create_topics(bootstrap, run_prefix, 4))
            asyncio.run(produce_fast(bootstrap, run_settings.events_topic, pulse_workload))
            pulse_runs[name].append(
                measure_pulse(
                    bootstrap,
                    run_prefix,
                    modes[name],
                    work,
                    args.pulse_events,
                    args.pulse_budget,
                    env,
                    i,
                    state_size=(i == 1),
                )
            )
    capacity = report.median_eps(pulse_runs["full"])
    rate, rate_source = latency_rate(args, capacity)
    waited, busy = wait_quiet()  # the broker's housekeeping of the runs above
    log(f"latency: machine quiet after {waited:.0f} s (cores busy per second: {busy})")
    latency = median_latency(
        [
            measure_latency(bootstrap, modes["full"], work, args, env, rate, rate_source)
            for _ in range(args.repeat)
        ]
    )
    log(f"latency: {latency}")

    peer_runs: list[dict[str, Any]] = []
    peer_error = None
    if args.skip_peer:
        peer_error = "skipped (--skip-peer)"
    elif peer_version() == "not installed":
        peer_error = "quixstreams not installed (pip install -e '.[bench]')"
    if peer_error is not None:
        log(f"peer: {peer_error}")
    for i in range(1, args.repeat + 1):
        if peer_error is not None:
            break
        try:
            peer_runs.append(
                measure_peer(
                    bootstrap,
                    topic,
                    f"{prefix}.peer-alerts",
                    work,
                    args.events,
                    args.peer_budget,
                    i,
                    state_size=(i == 1),
                )
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            peer_error = f"run {i} failed: {exc}"
            log(f"peer: {peer_error}")

    def pulse_section(name: str, **extra: Any) -> dict[str, Any]:
        runs = pulse_runs[name]
        rss = [r["peak_rss_bytes"] for r in runs if r.get("peak_rss_bytes")]
        return section(
            runs,
            args.pulse_events,
            mode=name,
            peak_rss_bytes=max(rss) if rss else None,
            state_bytes_per_deal=runs[0].get("state_bytes_per_deal"),
            tracked_deals=runs[0].get("tracked_deals"),
            subset=args.pulse_events < args.events,
            **extra,
        )

    peer_rss = [r["peak_rss_bytes"] for r in peer_runs if r.get("peak_rss_bytes")]
    limit_s = section(limit_runs, args.events)
    floor_s = section(floor_runs, args.events)
    pulse_s = pulse_section("full", latency=latency)
    parity_s = pulse_section("parity")
    peer_s = section(
        peer_runs,
        args.events,
        name=f"quixstreams {peer_version()}",
        peak_rss_bytes=max(peer_rss) if peer_rss else None,
        state_bytes_per_deal=peer_runs[0].get("state_bytes_per_deal") if peer_runs else None,
        error=peer_error,
    )
    return {
        "schema": report.SCHEMA_ID,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            **info,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "note": args.note,
        },
        "config": {
            "events": args.events,
            "pulse_events": args.pulse_events,
            "repeat": args.repeat,
            "quick": args.quick,
            "deals": args.deals,
            "owners": args.owners,
            "seed": args.seed,
            "avg_event_bytes": round(workload.avg_bytes, 1),
            "partitions": 4,
            "produce_seconds": round(produce_s, 2),
            "rules": modes["full"].rules,
            "parity_rules_added": modes["full"].parity_added,
            "kpis": modes["full"].kpis,
            "modes": {
                name: {"rules": m.rules, "kpis": m.kpis, "env": m.env} for name, m in modes.items()
            },
            "worker_env": env,
            "latency_share": args.latency_share,
            "budgets_s": {
                "pulse": args.pulse_budget,
                "peer": args.peer_budget,
                "limit": args.limit_budget,
            },
        },
        "limit": limit_s,
        "floor": floor_s,
        "pulse": pulse_s,
        "pulse_parity": parity_s,
        "peer": peer_s,
        "ratios": report.ratios(
            limit_s["median_eps"],
            pulse_s["median_eps"],
            peer_s["median_eps"],
            floor=floor_s["median_eps"],
            parity=parity_s["median_eps"],
        ),
    }


def write(result: dict[str, Any], out_dir: Path) -> Path:
    try:
        import jsonschema
    except ImportError:  # the test extra brings it; the run itself does not need it
        jsonschema = None
    if jsonschema is not None:
        jsonschema.validate(result, report.RESULT_SCHEMA)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return path


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` blocks stop the worker and broker."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # leadership of fresh topics settles while we produce; aiokafka retries and says so
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="crm-pulse-bench-") as tmp:
        work = Path(tmp)
        with kafka_for(args.bootstrap, work, log) as bootstrap:
            result = run(args, bootstrap, work)
    path = write(result, args.out_dir)
    print()
    print(report.format_table(result))
    print(report.format_targets(result))
    for name in ("limit", "floor", "pulse_parity", "pulse", "peer"):
        for i, figure in enumerate(result[name]["runs"], 1):
            shown = {"pulse": "full", "pulse_parity": "parity"}.get(name, name)
            print(f"  {shown} run {i}: {report.describe_run(figure)}")
    if result["pulse"]["subset"]:
        print(f"  CRM Pulse measured on the first {result['pulse']['events']} events only")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
