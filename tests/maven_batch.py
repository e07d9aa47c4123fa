"""An independent batch computation of the KPI catalog over the Maven CRM CSV files.

Written from the definitions in docs/kpis.md and streams/kpis/catalog.yaml (the words),
not from the streaming code: it reads the CSV files directly and computes every KPI per
scope and window with plain loops. Used by the replay tests to check the stream cell by
cell.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAVEN = REPO.parent / "shared" / "datasets" / "maven-crm"

# the parameters of the shipped catalog, restated
PROBABILITY = {"Prospecting": Decimal("0.1"), "Engaging": Decimal("0.3")}
STALE_DAYS = 30

Cell = tuple[str, str, str, str, str]  # kpi, scope, window kind, window start, dimension


def rows(name: str) -> list[dict[str, str]]:
    with (MAVEN / name).open(newline="", encoding="utf-8") as fh:
        return [{k: v.strip() for k, v in r.items()} for r in csv.DictReader(fh)]


@dataclass
class Deal:
    owner: str
    scopes: tuple[str, ...]
    created: date
    stage_open: str
    account: str
    product: str
    engaged: date | None
    list_cents: int | None
    final_stage: str
    closed: date | None
    close_cents: int | None

    def exists(self, day: date) -> bool:
        return self.created <= day

    def open_at(self, day: date) -> bool:
        return self.exists(day) and not (self.closed is not None and self.closed <= day)

    def amount_at(self, day: date) -> int | None:
        return self.list_cents if self.open_at(day) else self.close_cents

    def complete_at(self, day: date) -> bool:
        return bool(
            self.account
            and self.product
            and self.engaged is not None
            and self.amount_at(day) is not None
        )


def load() -> tuple[list[Deal], date]:
    teams = {
        r["sales_agent"]: (r["manager"], r["regional_office"]) for r in rows("sales_teams.csv")
    }
    prices = {r["product"]: int(r["sales_price"]) * 100 for r in rows("products.csv")}
    pipeline = rows("sales_pipeline.csv")
    as_of = max(
        date.fromisoformat(r[c]) for r in pipeline for c in ("engage_date", "close_date") if r[c]
    )
    deals = []
    for r in pipeline:
        team, region = teams.get(r["sales_agent"], ("unassigned", "unassigned"))
        engaged = date.fromisoformat(r["engage_date"]) if r["engage_date"] else None
        closed = date.fromisoformat(r["close_date"]) if r["close_date"] else None
        deals.append(
            Deal(
                owner=r["sales_agent"],
                scopes=(
                    f"owner:{r['sales_agent']}",
                    f"team:{team}",
                    f"region:{region}",
                    "global:all",
                ),
                created=engaged or as_of,
                stage_open="Engaging" if engaged else r["deal_stage"],
                account=r["account"],
                product=r["product"],
                engaged=engaged,
                list_cents=prices.get(r["product"]),
                final_stage=r["deal_stage"],
                closed=closed,
                close_cents=int(Decimal(r["close_value"]) * 100) if r["close_value"] else None,
            )
        )
    return deals, as_of


def months(first: date, last: date) -> Iterator[tuple[date, date]]:
    start = first.replace(day=1)
    while start <= last:
        nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        yield start, nxt
        start = nxt


def kpis_of(
    deals: list[Deal], start: date, end: date, at: date
) -> dict[tuple[str, str], float | None]:
    """Every KPI over deals of one scope, window [start, end), state at the end of ``at``."""
    inside = lambda d: d is not None and start <= d < end  # noqa: E731
    won = [d for d in deals if d.final_stage == "Won" and inside(d.closed)]
    lost = [d for d in deals if d.final_stage == "Lost" and inside(d.closed)]
    new = [d for d in deals if inside(d.created)]
    existing = [d for d in deals if d.exists(at)]
    open_ = [d for d in deals if d.open_at(at)]
    with_amount = [d for d in open_ if d.list_cents is not None]
    weighted = sum(
        int(
            (Decimal(d.list_cents) * PROBABILITY[d.stage_open]).quantize(
                Decimal(1), ROUND_HALF_EVEN
            )
        )
        for d in with_amount
        if d.list_cents is not None
    )
    stale = [d for d in open_ if (at - d.created).days >= STALE_DAYS]
    won_amounts = [d.close_cents for d in won if d.close_cents is not None]
    cycles = [
        (d.closed - d.engaged).days
        for d in won
        if d.closed is not None and d.engaged is not None and d.engaged <= d.closed
    ]
    out: dict[tuple[str, str], float | None] = {
        ("win_rate", ""): len(won) / (len(won) + len(lost)) if won or lost else None,
        ("open_pipeline_value", ""): sum(d.list_cents or 0 for d in open_) / 100,
        ("weighted_pipeline", ""): weighted / 100,
        ("avg_won_deal_size", ""): round(Fraction(sum(won_amounts), len(won_amounts))) / 100
        if won_amounts
        else None,
        ("median_sales_cycle", ""): float(statistics.median(cycles)) if cycles else None,
        ("new_deals", ""): float(len(new)),
        ("deals_won", ""): float(len(won)),
        ("deals_lost", ""): float(len(lost)),
        ("activities_per_owner", ""): None,
        ("lead_response_time", ""): None,
        ("required_fields_completeness", ""): (
            sum(d.complete_at(at) for d in existing) / len(existing) if existing else None
        ),
        ("stale_open_share", ""): len(stale) / len(open_) if open_ else None,
    }
    # every Won/Lost deal left stage Engaging (its creation stage); Won is forward, Lost not
    if won or lost:
        out[("stage_conversion", "from_stage=Engaging")] = len(won) / (len(won) + len(lost))
    # trust reasons are published rounded to 6 decimals
    out[("_open_amount_share", "")] = round(len(with_amount) / len(open_), 6) if open_ else 1.0
    return out


def expected() -> tuple[dict[Cell, float | None], date]:
    """Every KPI cell: per scope, per calendar month, overall (all) and rolling 7/30 days."""
    deals, as_of = load()
    by_scope: dict[str, list[Deal]] = {}
    for d in deals:
        for scope in d.scopes:
            by_scope.setdefault(scope, []).append(d)
    cells: dict[Cell, float | None] = {}
    for scope, mine in by_scope.items():
        first = min(d.created for d in mine)
        windows = [("month", s, e) for s, e in months(first, as_of)]
        windows += [
            ("all", date(1970, 1, 1), as_of + timedelta(days=1)),
            ("rolling7", as_of - timedelta(days=6), as_of + timedelta(days=1)),
            ("rolling30", as_of - timedelta(days=29), as_of + timedelta(days=1)),
        ]
        for kind, start, end in windows:
            at = min(end - timedelta(days=1), as_of)
            for (kpi, dim), value in kpis_of(mine, start, end, at).items():
                cells[(kpi, scope, kind, start.isoformat(), dim)] = value
    return cells, as_of


COMPARED_WINDOWS = ("month", "all", "rolling7", "rolling30")


def cells_of(snapshots: list[dict[str, object]]) -> dict[Cell, float | None]:
    """The streamed snapshots (JSON dicts) as cells comparable with :func:`expected`;
    the completeness reason of open_pipeline_value becomes the ``_open_amount_share`` cell."""
    cells: dict[Cell, float | None] = {}
    for s in snapshots:
        window, scope = s["window"], s["scope"]
        assert isinstance(window, dict) and isinstance(scope, dict)
        if window["kind"] not in COMPARED_WINDOWS:
            continue
        dims = s.get("dimensions") or {}
        assert isinstance(dims, dict)
        dim = ",".join(f"{k}={v}" for k, v in sorted(dims.items()))
        key = (
            str(s["kpi"]),
            f"{scope['kind']}:{scope['id']}",
            str(window["kind"]),
            str(window["start"])[:10],
            dim,
        )
        value = s["value"]
        cells[key] = None if value is None else float(value)  # type: ignore[arg-type]
        if s["kpi"] == "open_pipeline_value":
            trust = s["trust"]
            assert isinstance(trust, dict)
            reason = next(r for r in trust["reasons"] if r["name"] == "completeness")
            cells[("_open_amount_share", key[1], key[2], key[3], "")] = reason["value"]
    return cells
