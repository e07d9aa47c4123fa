"""KPI values computed from the current entity states of this worker (a stand-in).

Until the windowed KPI tables of the KPI agent land, the housekeeping timer publishes the
catalog KPIs it knows how to compute from the latest record states, so the
``crm_pulse_kpi_value`` / ``crm_pulse_kpi_trust`` gauges and the KPI dashboards have live
data. Pure: states and ``now`` (epoch seconds) in, points out. Limits: one worker sees only
its own partitions, so the figures are exact for a single worker only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.kpis.catalog import KpiDefinition

CLOSED = frozenset({"Won", "Lost"})
REQUIRED = ("amount", "close_date", "next_step", "owner_id")
FULL_TRUST_SAMPLE = 20
SCOPE_FIELDS = {"team": "team", "region": "region"}


@dataclass(frozen=True)
class KpiPoint:
    kpi: str
    scope_kind: str
    scope_id: str
    window: str
    value: float
    trust: float


@dataclass(frozen=True)
class Deal:
    stage: str | None
    amount: float | None
    complete: bool
    created: float
    updated: float
    scopes: tuple[tuple[str, str], ...]

    @property
    def open(self) -> bool:
        return self.stage not in CLOSED


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def to_deal(state: dict[str, Any]) -> Deal | None:
    """The KPI-relevant view of one deal state (``None`` for deleted or empty records)."""
    fields = state.get("f") or {}
    if state.get("x") or not fields:
        return None
    amount = fields.get("amount")
    number = float(amount) if isinstance(amount, int | float) else None
    complete = number is not None and all(_filled(fields.get(name)) for name in REQUIRED)
    scopes = [("global", "all")]
    for kind, name in SCOPE_FIELDS.items():
        if _filled(fields.get(name)):
            scopes.append((kind, str(fields[name])))
    return Deal(
        stage=fields.get("stage"), amount=number, complete=complete,
        created=float(state.get("c", 0.0)), updated=float(state.get("u", 0.0)),
        scopes=tuple(scopes),
    )  # fmt: skip


def window_seconds(window: str) -> float | None:
    """``rolling_7d`` -> 7 days in seconds; ``current`` -> ``None`` (point in time)."""
    if window == "current":
        return None
    if window.startswith("rolling_") and window.endswith("d"):
        days = window.removeprefix("rolling_").removesuffix("d")
        if days.isdigit():
            return float(days) * 86400.0
    raise ValueError(f"unsupported window {window!r} (use current or rolling_<N>d)")


def _trust(deals: Sequence[Deal]) -> float:
    if not deals:
        return 0.0
    completeness = sum(d.complete for d in deals) / len(deals)
    return completeness * min(1.0, len(deals) / FULL_TRUST_SAMPLE)


# Each: (deals of one scope, window start or None) -> (value, contributing deals) or None.
Formula = Callable[[Sequence[Deal], float | None], tuple[float, Sequence[Deal]] | None]


def _since(deals: Sequence[Deal], start: float | None, attr: str) -> list[Deal]:
    return [d for d in deals if start is None or getattr(d, attr) >= start]


def _win_rate(deals: Sequence[Deal], start: float | None) -> tuple[float, Sequence[Deal]] | None:
    closed = [d for d in _since(deals, start, "updated") if not d.open]
    if not closed:
        return None
    return sum(d.stage == "Won" for d in closed) / len(closed), closed


def _open_pipeline(deals: Sequence[Deal], start: float | None) -> tuple[float, Sequence[Deal]]:
    open_deals = [d for d in deals if d.open]
    return sum(d.amount or 0.0 for d in open_deals), open_deals


def _new_deals(deals: Sequence[Deal], start: float | None) -> tuple[float, Sequence[Deal]]:
    created = _since(deals, start, "created")
    return float(len(created)), created


def _deals_won(deals: Sequence[Deal], start: float | None) -> tuple[float, Sequence[Deal]]:
    won = [d for d in _since(deals, start, "updated") if d.stage == "Won"]
    return float(len(won)), won


def _completeness(
    deals: Sequence[Deal], start: float | None
) -> tuple[float, Sequence[Deal]] | None:
    open_deals = [d for d in deals if d.open]
    if not open_deals:
        return None
    return sum(d.complete for d in open_deals) / len(open_deals), open_deals


FORMULAS: dict[str, Formula] = {
    "win_rate": _win_rate,
    "open_pipeline_value": _open_pipeline,
    "new_deals": _new_deals,
    "deals_won": _deals_won,
    "data_completeness": _completeness,
}


def compute(
    states: Iterable[dict[str, Any]], catalog: Sequence[KpiDefinition], now: float
) -> list[KpiPoint]:
    """Every (KPI, scope, window) value this stand-in can compute from ``states``."""
    by_scope: dict[tuple[str, str], list[Deal]] = defaultdict(list)
    for state in states:
        deal = to_deal(state)
        if deal is not None:
            for scope in deal.scopes:
                by_scope[scope].append(deal)
    points: list[KpiPoint] = []
    for kpi in catalog:
        formula = FORMULAS.get(kpi.id)
        if formula is None:
            continue
        for window in (str(w) for w in kpi.windows):
            span = window_seconds(window)
            start = None if span is None else now - span
            for (kind, scope_id), deals in sorted(by_scope.items()):
                if kind not in kpi.dimensions:
                    continue
                result = formula(deals, start)
                if result is not None:
                    value, used = result
                    points.append(KpiPoint(kpi.id, kind, scope_id, window, value, _trust(used)))
    return points
