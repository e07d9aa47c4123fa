"""``crm-pulse``: the command line of CRM Pulse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from streams.settings import Settings


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from streams.app import create_app

    pulse = create_app(settings)
    worker = faust.Worker(pulse.app, loglevel=settings.log_level, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.demo import run_demo

    return run_demo(settings, rate=args.rate, duration=args.duration, kafka_port=args.kafka_port)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulator import run

    sent = asyncio.run(
        run(settings.bootstrap_servers, settings.events_topic, rate=args.rate, count=args.count,
            seed=args.seed)
    )  # fmt: skip
    print(f"sent {sent} events to {settings.events_topic}")
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from streams.schemas import export_schemas

    for path in export_schemas(Path(args.out)):
        print(path)
    return 0


def _rules_validate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.rules.loader import load_paths

    paths = [Path(p) for p in args.paths] or [settings.rules_dir]
    result = load_paths(paths)
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(result.rules)} valid rule(s), {len(result.problems)} error(s)")
    return 0 if result.ok else 1


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kpis.exceptions import ReplayError
    from streams.kpis.replay import Progress, produce, synthesize
    from streams.topics import ensure_topics

    try:
        events = synthesize(Path(args.folder))
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(ensure_topics(settings))
    bar = None if args.quiet else Progress(len(events))
    sent, seconds = asyncio.run(produce(
        events, settings.bootstrap_servers, settings.events_topic, speed=args.speed,
        progress=bar.update if bar else None,
    ))  # fmt: skip
    rate = sent / seconds if seconds else float("inf")
    print(f"replayed {sent} events to {settings.events_topic} in {seconds:.2f}s ({rate:,.0f}/s)")
    return 0


def _kpis_show(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kpis.show import from_topic, from_worker, render

    filters = {k: v for k in ("kpi", "scope_kind", "scope_id", "window")
               if (v := getattr(args, k))}  # fmt: skip
    if args.topic:
        found = asyncio.run(from_topic(settings.bootstrap_servers, settings.kpis_topic, filters))
    else:
        url = args.url or f"http://{settings.web_host}:{settings.web_port}"
        found = from_worker(url, filters)
    print(render(found[-args.limit :] if args.limit else found))
    print(f"{len(found)} snapshot(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-pulse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker against the Kafka given by settings/env")
    p.set_defaults(func=_worker)

    p = sub.add_parser("demo", help="local broker + worker + simulator + metrics, one command")
    p.add_argument("--rate", type=float, default=20.0, help="simulated events per second")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--kafka-port", type=int, default=0, help="broker port (default: free)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("simulate", help="produce realistic CRM change events")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("schemas", help="export the JSON Schemas of the public contracts")
    p.add_argument("--out", default="schemas")
    p.set_defaults(func=_schemas)

    p = sub.add_parser("replay", help="replay a CRM dataset folder (Maven CRM layout) to Kafka")
    p.add_argument("folder", help="folder with sales_pipeline.csv, products.csv, sales_teams.csv")
    p.add_argument("--speed", type=float, default=None,
                   help="event-time seconds per wall second (default: as fast as possible)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_replay)

    kpis = sub.add_parser("kpis", help="KPI snapshots")
    ksub = kpis.add_subparsers(dest="kpis_command", required=True)
    p = ksub.add_parser("show", help="print KPI snapshots as a table")
    p.add_argument("--url", default=None, help="worker base URL (default: from settings)")
    p.add_argument("--topic", action="store_true", help="read the KPI topic instead")
    p.add_argument("--kpi")
    p.add_argument("--scope-kind", dest="scope_kind")
    p.add_argument("--scope-id", dest="scope_id")
    p.add_argument("--window")
    p.add_argument("--limit", type=int, default=0, help="only the last N rows")
    p.set_defaults(func=_kpis_show)

    rules = sub.add_parser("rules", help="validate, apply, list, diff and test rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("validate", help="check rule files offline (file, line, field)")
    p.add_argument("paths", nargs="*")
    p.set_defaults(func=_rules_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    code: int = args.func(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
