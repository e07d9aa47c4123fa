"""CLI verbs of the KPI feature: ``crm-pulse replay DIR`` and ``crm-pulse kpis show``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from streams.settings import Settings


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
        events, settings, settings.events_topic, speed=args.speed,
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
        found = asyncio.run(from_topic(settings, settings.kpis_topic, filters))
    else:
        url = args.url or f"http://{settings.web_host}:{settings.web_port}"
        found = from_worker(url, filters)
    print(render(found[-args.limit :] if args.limit else found))
    print(f"{len(found)} snapshot(s)")
    return 0


def add_kpi_commands(sub: Any) -> None:
    """Register the verbs on the ``crm-pulse`` sub-parsers."""
    p = sub.add_parser("replay", help="replay a CRM dataset folder (Maven CRM layout) to Kafka")
    p.add_argument("folder", help="folder with sales_pipeline.csv, products.csv, sales_teams.csv")
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        help="event-time seconds per wall second (default: as fast as possible)",
    )
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
