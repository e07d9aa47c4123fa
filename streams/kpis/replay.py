"""Replay of a CRM dataset folder (Maven "CRM + Sales + Opportunities" layout) to Kafka.

The dataset has one row per deal with its final state, so the change events are
synthesized (the written definition the KPI tests follow, see docs/kpis.md):

- a deal with an ``engage_date`` is created at that date (00:00 UTC) in stage
  ``Engaging``; a deal without dates (Prospecting) is created at the as-of instant, the
  latest date of the file, in its own stage;
- a Won/Lost deal gets one update at ``close_date`` (00:00 UTC): ``stage``,
  ``close_date``, ``close_value`` and ``amount`` = ``close_value``;
- on creation ``amount`` is the product's ``sales_price`` from ``products.csv`` when the
  product name matches exactly, otherwise missing (e.g. ``GTXPro``: dirty data, counted by
  the data-quality KPIs); blank CSV cells are sent as missing fields;
- ``owner_id`` is the ``sales_agent``; the org directory is ``sales_teams.csv``;
- events are ordered by (time, creates before closes, file row); ``event_id`` is stable
  (``<opportunity_id>:create`` / ``:close``), so a replay sent twice counts once.
"""

from __future__ import annotations

import asyncio
import csv
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from streams.kpis.exceptions import ReplayError

if TYPE_CHECKING:
    from streams.settings import Settings

PIPELINE = "sales_pipeline.csv"
PRODUCTS = "products.csv"
TEAMS = "sales_teams.csv"
SOURCE = "replay"


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    at: datetime
    order: tuple[int, int]
    key: bytes
    value: dict[str, Any]

    def encoded(self) -> bytes:
        return orjson.dumps(self.value)


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise ReplayError(f"{path}: missing (expected the Maven CRM folder layout)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items() if k}
            for row in csv.DictReader(fh)
        ]


def _midnight(text: str) -> datetime:
    d = date.fromisoformat(text)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _blank_free(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in ("", None)}


def _number(text: str) -> float | int | None:
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def synthesize(folder: Path) -> list[ReplayEvent]:
    """The time-ordered change events of the dataset in ``folder``."""
    rows = read_csv(folder / PIPELINE)
    prices = {p["product"]: p["sales_price"] for p in read_csv(folder / PRODUCTS)}
    needed = {
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    }
    if rows and not needed <= set(rows[0]):
        raise ReplayError(f"{folder / PIPELINE}: columns {sorted(needed - set(rows[0]))} missing")
    dates = [r[c] for r in rows for c in ("engage_date", "close_date") if r[c]]
    if not dates:
        raise ReplayError(f"{folder / PIPELINE}: no dates at all")
    as_of = _midnight(max(dates))
    events: list[ReplayEvent] = []
    for index, row in enumerate(rows):
        deal_id = row["opportunity_id"]
        if not deal_id:
            continue
        created = _midnight(row["engage_date"]) if row["engage_date"] else as_of
        stage = "Engaging" if row["engage_date"] else (row["deal_stage"] or "Prospecting")
        price = prices.get(row["product"])
        fields = _blank_free(
            {
                "name": f"{row['account'] or 'unknown account'} / {row['product']}",
                "stage": stage,
                "product": row["product"],
                "account": row["account"],
                "engage_date": row["engage_date"],
                "amount": _number(price) if price else None,
            }
        )
        base = {
            "source": SOURCE,
            "entity": "deal",
            "entity_id": deal_id,
            "owner_id": row["sales_agent"] or None,
            "actor": row["sales_agent"] or None,
        }
        events.append(
            ReplayEvent(
                created,
                (0, index),
                deal_id.encode(),
                {
                    **base,
                    "event_id": f"{deal_id}:create",
                    "op": "create",
                    "occurred_at": created.isoformat(),
                    "fields": fields,
                },
            )
        )
        if row["deal_stage"] in ("Won", "Lost") and row["close_date"]:
            closed = _midnight(row["close_date"])
            value = _number(row["close_value"])
            close_fields = _blank_free(
                {
                    "stage": row["deal_stage"],
                    "close_date": row["close_date"],
                    "close_value": value,
                    "amount": value,
                }
            )
            events.append(
                ReplayEvent(
                    closed,
                    (1, index),
                    deal_id.encode(),
                    {
                        **base,
                        "event_id": f"{deal_id}:close",
                        "op": "update",
                        "occurred_at": closed.isoformat(),
                        "fields": close_fields,
                    },
                )
            )
    events.sort(key=lambda e: (e.at, e.order))
    return events


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


async def produce(
    events: Sequence[ReplayEvent],
    settings: Settings,
    topic: str,
    *,
    speed: float | None = None,
    progress: Callable[[int, datetime | None, bool], None] | None = None,
) -> tuple[int, float]:
    """Send ``events`` in order; ``speed`` = event-time seconds per wall second (None: max).

    Returns (events sent, seconds taken, acks included).
    """
    from streams.runtime.clients import new_producer

    producer = new_producer(settings, "replay", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.monotonic()
    sent = 0
    try:
        first = events[0].at if events else None
        for event in events:
            if speed and first is not None:
                due = (event.at - first).total_seconds() / speed
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
            await producer.send(topic, key=event.key, value=event.encoded())
            sent += 1
            if progress is not None:
                progress(sent, event.at, False)
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    if progress is not None:
        progress(sent, events[-1].at if events else None, True)
    return sent, elapsed
