"""The change events of a CRM dataset folder (Maven "CRM + Sales + Opportunities" layout).

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

Sending them to Kafka is :func:`streams.runtime.replay.produce`; the ``crm-pulse replay``
verb is :mod:`streams.commands.kpis`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.kpis.exceptions import ReplayError

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
