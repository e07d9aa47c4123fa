"""KPI values and trust from a window's aggregated facts (closed registry: id -> function).

The catalog (:mod:`streams.kpis.catalog`) checks its KPIs against :data:`COMPUTERS`, so this
module does not import it back: :func:`trust` takes any definition with a ``min_sample``
(:class:`Sampled`, which :class:`~streams.kpis.catalog.KpiDef` is).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol


class Sampled(Protocol):
    """What :func:`trust` reads of a KPI definition."""

    @property
    def min_sample(self) -> int | None: ...


@dataclass
class Flow:
    """Flow facts of a window, merged over its days."""

    new: int = 0
    won: int = 0
    won_cents: int = 0
    won_with_amount: int = 0
    cycles: list[int] = field(default_factory=list)
    lost: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    activities: int = 0
    activity_owners: dict[str, int] = field(default_factory=dict)
    responses: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """What computations need besides the facts."""

    stage_order: tuple[str, ...]


@dataclass(frozen=True)
class Value:
    """One computed value: ``completeness`` in [0, 1] of the inputs it depends on."""

    value: float | None
    sample: int | None
    completeness: float = 1.0
    completeness_detail: str = "no required input field"
    dimensions: Mapping[str, str] = field(default_factory=dict)


State = Mapping[str, int]
Computer = Callable[[Flow, State, Context], list[Value]]


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def share(ok: int, total: int, what: str) -> tuple[float, str]:
    """``ok / total`` kept in [0, 1] (a state that a refused fact left unbalanced never
    makes a trust figure leave its range)."""
    if total <= 0:
        return 1.0, f"no {what}"
    return min(1.0, max(0.0, ok / total)), f"{ok}/{total} {what}"


def median(values: Sequence[float]) -> float | None:
    """Exact median (mean of the two middle values for an even count)."""
    return float(statistics.median(values)) if values else None


def cents_to_money(cents: int) -> float:
    return cents / 100


def win_rate(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(ratio(f.won, f.won + f.lost), f.won + f.lost)]


def open_pipeline_value(f: Flow, s: State, c: Context) -> list[Value]:
    comp, detail = share(s.get("open_ok", 0), s.get("open", 0), "open deals with an amount")
    return [Value(cents_to_money(s.get("open_cents", 0)), s.get("open", 0), comp, detail)]


def weighted_pipeline(f: Flow, s: State, c: Context) -> list[Value]:
    comp, detail = share(s.get("open_ok", 0), s.get("open", 0), "open deals with an amount")
    return [Value(cents_to_money(s.get("wcents", 0)), s.get("open", 0), comp, detail)]


def avg_won_deal_size(f: Flow, s: State, c: Context) -> list[Value]:
    comp, detail = share(f.won_with_amount, f.won, "won deals with an amount")
    value = (
        cents_to_money(round(Fraction(f.won_cents, f.won_with_amount)))
        if f.won_with_amount
        else None
    )
    return [Value(value, f.won, comp, detail)]


def median_sales_cycle(f: Flow, s: State, c: Context) -> list[Value]:
    comp, detail = share(len(f.cycles), f.won, "won deals with a cycle start")
    return [Value(median(f.cycles), len(f.cycles), comp, detail)]


def new_deals(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(float(f.new), None)]


def deals_won(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(float(f.won), None)]


def deals_lost(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(float(f.lost), None)]


def stage_conversion(f: Flow, s: State, c: Context) -> list[Value]:
    order = {stage: i for i, stage in enumerate(c.stage_order)}
    exits: dict[str, int] = {}
    forward: dict[str, int] = {}
    for pair, n in f.transitions.items():
        src, _, dst = pair.partition(">")
        exits[src] = exits.get(src, 0) + n
        if src in order and dst in order and order[dst] > order[src]:
            forward[src] = forward.get(src, 0) + n
    return [
        Value(ratio(forward.get(src, 0), n), n, dimensions={"from_stage": src})
        for src, n in sorted(exits.items())
    ]


def activities_per_owner(f: Flow, s: State, c: Context) -> list[Value]:
    owners = len(f.activity_owners)
    return [Value(ratio(f.activities, owners), f.activities)]


def lead_response_time(f: Flow, s: State, c: Context) -> list[Value]:
    m = median(f.responses)
    return [Value(None if m is None else m / 60, len(f.responses))]


def required_fields_completeness(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(ratio(s.get("complete", 0), s.get("deals", 0)), s.get("deals", 0))]


def stale_open_share(f: Flow, s: State, c: Context) -> list[Value]:
    return [Value(ratio(s.get("stale", 0), s.get("open", 0)), s.get("open", 0))]


COMPUTERS: dict[str, Computer] = {
    "win_rate": win_rate,
    "open_pipeline_value": open_pipeline_value,
    "weighted_pipeline": weighted_pipeline,
    "avg_won_deal_size": avg_won_deal_size,
    "median_sales_cycle": median_sales_cycle,
    "new_deals": new_deals,
    "deals_won": deals_won,
    "deals_lost": deals_lost,
    "stage_conversion": stage_conversion,
    "activities_per_owner": activities_per_owner,
    "lead_response_time": lead_response_time,
    "required_fields_completeness": required_fields_completeness,
    "stale_open_share": stale_open_share,
}


@dataclass(frozen=True)
class Reads:
    """What one KPI's computation reads: :class:`Flow` fields and state components. Fact
    extraction keeps only what the loaded catalog reads (``tests/unit/test_kpi_reads.py``
    proves each declaration complete: changing anything else never changes the value)."""

    flow: frozenset[str] = frozenset()
    state: frozenset[str] = frozenset()


def _reads(flow: str = "", state: str = "") -> Reads:
    return Reads(frozenset(flow.split()), frozenset(state.split()))


READS: dict[str, Reads] = {
    "win_rate": _reads("won lost"),
    "open_pipeline_value": _reads(state="open open_ok open_cents"),
    "weighted_pipeline": _reads(state="open open_ok wcents"),
    "avg_won_deal_size": _reads("won won_cents won_with_amount"),
    "median_sales_cycle": _reads("won cycles"),
    "new_deals": _reads("new"),
    "deals_won": _reads("won"),
    "deals_lost": _reads("lost"),
    "stage_conversion": _reads("transitions"),
    "activities_per_owner": _reads("activities activity_owners"),
    "lead_response_time": _reads("responses"),
    "required_fields_completeness": _reads(state="complete deals"),
    "stale_open_share": _reads(state="stale open"),
}


@dataclass(frozen=True)
class TrustFigure:
    value: float
    reasons: list[tuple[str, float, str]]


def freshness(age_days: int | None, fresh_days: int, window_open: bool) -> tuple[float, str]:
    """1 while the scope's latest input is at most ``fresh_days`` behind the watermark,
    then linearly down to 0 at ``4 * fresh_days``; closed windows are final (1)."""
    if not window_open:
        return 1.0, "window closed: inputs final"
    if age_days is None:
        return 0.0, "no input seen in this scope"
    if age_days <= fresh_days:
        return 1.0, f"latest input {age_days} day(s) behind the watermark"
    value = max(0.0, 1.0 - (age_days - fresh_days) / (3 * fresh_days))
    return value, f"latest input {age_days} day(s) behind the watermark (fresh: {fresh_days})"


def sample_factor(sample: int | None, min_sample: int | None) -> tuple[float, str]:
    if min_sample is None:
        return 1.0, "count: no minimum sample"
    n = sample or 0
    return min(1.0, max(0.0, n / min_sample)), f"{n} input(s), {min_sample} wanted"


def trust(
    kpi: Sampled, value: Value, age_days: int | None, fresh_days: int, window_open: bool
) -> TrustFigure:
    """Trust = the weakest of completeness, freshness and sample size (each in [0, 1])."""
    fresh, fresh_detail = freshness(age_days, fresh_days, window_open)
    sample, sample_detail = sample_factor(value.sample, kpi.min_sample)
    reasons = [
        ("completeness", round(value.completeness, 6), value.completeness_detail),
        ("freshness", round(fresh, 6), fresh_detail),
        ("sample_size", round(sample, 6), sample_detail),
    ]
    return TrustFigure(min(r[1] for r in reasons), reasons)
