"""CLI verbs of the KPI feature: ``crm-pulse replay DIR`` and ``crm-pulse kpis show``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from streams.settings import Settings


class Progress:
    """A one-line progress bar on a terminal stream (plain lines when not a TTY)."""

    def __init__(self, total: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, at: datetime | None = None, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < 0.2:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        filled = int(frac * self.width)
        rate = done / max(now - self.started, 1e-9)
        when = f" event time {at:%Y-%m-%d}" if at else ""
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
            f"{rate:,.0f} ev/s{when}"
        )
        end = "\n" if final or not self.out.isatty() else ""
        self.out.write(("\r" if self.out.isatty() else "") + line + end)
        self.out.flush()


def from_worker(url: str, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    """The snapshots the worker's ``GET /kpis`` serves for ``filters``."""
    query = urllib.parse.urlencode(filters)
    with urllib.request.urlopen(f"{url.rstrip('/')}/kpis?{query}", timeout=10) as resp:
        body = json.loads(resp.read())
    return list(body["snapshots"])


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kpis.exceptions import ReplayError
    from streams.kpis.replay import synthesize
    from streams.runtime.replay import produce
    from streams.runtime.topics import ensure_topics

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
    from streams.kpis.show import render
    from streams.runtime.kpis_topic import from_topic

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
