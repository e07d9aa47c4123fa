"""Labelled KPI series for the anomaly harness: real Maven CRM counts and synthetic rhythms,
with documented injected anomalies (pure, seeded: the same series on every run).

Real series (``../shared/datasets/maven-crm``, see its PROVENANCE.md):

* daily ``new_deals`` (deals by ``engage_date``, 2016-10-20 .. 2017-12-27) and daily
  ``deals_won`` (Won deals by ``close_date``, 2017-03-01 .. 2017-12-31), each for the
  global scope, the 3 regional offices and the 6 managers' teams: 20 series;
* hourly ``new_deals`` for the global scope and the 3 regions: the sample has dates only, so
  each day's deals are spread over the working day (09:00-18:00, a fixed late-morning-heavy
  profile, seeded): 4 series of 10,400 points.

Synthetic series (documented rhythms, gamma-Poisson count noise):

* ``syn_daily_counts``: 3 years, weekday mean 8, weekends x0.2, Mondays x1.3, last three
  days of a month x1.8, growth 20 %/year, over-dispersed counts (gamma shape 8);
* ``syn_daily_small``: the same shape at mean 2.5 (small integer KPI);
* ``syn_daily_value``: 3 years of a continuous KPI (open pipeline value around 1e6, weekends
  x0.9, month ends x1.15, AR(1) noise with 3 % sd);
* ``syn_hourly_counts``: 1 year, 4 events/hour on weekdays 09:00-18:00 with a noon dip,
  0.2/hour otherwise, Poisson counts;
* ``syn_hourly_small``: the same shape at 1.2 events/hour.

The ``new_deals`` series are scored from ``RAMP_END`` (2017-03-01): the sample's start-up
ramp before it is a real change of regime, neither labelled nor scored.

Injected anomalies (several per series, one of each kind, in a seeded order, never in the
warm-up or the ramp and never overlapping; magnitudes in units of the series' own noise ``sd``, the
robust sd of its week-on-week differences, at least the Poisson sd of its mean, measured
over working hours for hourly series):

=================  =========================================  ===============================
kind               daily series                               hourly series
=================  =========================================  ===============================
spike              one point + 5 sd (at least +4 counts)      one working hour + 5 sd
dip                3 points x 0.25                            one working day (8 h) x 0.25
level_shift        21 points x 1.6 (or x 0.5, alternating)    72 h x 1.6 (or x 0.5)
trend_change       28 points ramping x 1.0 -> x 2.0           120 h ramping x 1.0 -> x 2.0
seasonality_break  21 points: weekends x 3, weekdays x 0.6    120 h shifted by 8 h (night)
flatline           3 points at 0 (counts) / stuck (values)    8 working hours at 0 / stuck
=================  =========================================  ===============================
"""

from __future__ import annotations

import csv
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

MAVEN = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "maven-crm"
KINDS = ("spike", "dip", "level_shift", "trend_change", "seasonality_break", "flatline")
DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class Anomaly:
    kind: str
    start: int  # first index of the anomaly
    end: int  # last index (inclusive)


@dataclass
class Series:
    name: str
    step_s: float
    ts: list[float]
    values: list[float]
    labels: list[Anomaly] = field(default_factory=list)
    source: str = "maven"
    #: First index scored: alarms before it count neither as detections nor as false
    #: alarms, and no anomaly is injected before it (a documented real regime, see RAMP_END).
    scored_from: int = 0
    #: First index of the sample's documented wind-down (``WIND_DOWN``, ``new_deals``
    #: series), or None: a diagnostic only, scoring is unchanged.
    wind_down_from: int | None = None

    @property
    def hourly(self) -> bool:
        return self.step_s < DAY

    @property
    def months(self) -> float:
        return (len(self.values) - self.scored_from) * self.step_s / (30.4375 * DAY)


# ---------------------------------------------------------------- the real sample
def _maven_rows(root: Path) -> tuple[list[dict[str, str]], dict[str, tuple[str, str]]]:
    with (root / "sales_pipeline.csv").open(newline="", encoding="utf-8") as fh:
        deals = list(csv.DictReader(fh))
    with (root / "sales_teams.csv").open(newline="", encoding="utf-8") as fh:
        teams = {r["sales_agent"]: (r["manager"], r["regional_office"]) for r in csv.DictReader(fh)}
    return deals, teams


def _scopes(agent: str, teams: dict[str, tuple[str, str]]) -> list[str]:
    manager, region = teams.get(agent, ("?", "?"))
    return ["global", f"region:{region}", f"team:{manager}"]


def _daily(counter: Counter[tuple[str, date]], scope: str, first: date, last: date) -> list[float]:
    days = (last - first).days + 1
    return [float(counter[(scope, first + timedelta(days=i))]) for i in range(days)]


def _epoch(day: date, hour: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()


#: The sample's pipeline ramps up from its first deals (5 engaged a week in October 2016)
#: to a steady ~160-240 a week by late February 2017 (weekly sums: 5, 4, 15, 24, 39, 35,
#: 49, 55, 68, 48, 55, 73, 60, 71, 79, 109, 116, 125, 192, 181, ...): a real, unlabelled
#: change of regime, not an injected anomaly. The ``new_deals`` series are scored from
#: this day on (detectors still learn from the first point); ``deals_won`` starts here.
RAMP_END = date(2017, 3, 1)

#: From this day on, the sample winds down: weekly new deals fall from the steady ~160-240
#: to 104, 72, 73, 72, 55, 35, 42, 37, 16 and 2 (the sample ends; deals engaged late had
#: no time to be recorded). A real, unlabelled change of regime like the ramp, but *scored*
#: as usual: the harness only reports how many false alarms fall in it
#: (``Series.wind_down_from``), for every detector alike.
WIND_DOWN = date(2017, 10, 25)

#: Share of a working day's deals per hour 09..17 (late-morning heavy, a lunch dip).
HOUR_PROFILE = (0.08, 0.14, 0.16, 0.10, 0.08, 0.12, 0.13, 0.11, 0.08)


def maven_series(root: Path = MAVEN, seed: int = 17) -> list[Series]:
    deals, teams = _maven_rows(root)
    created: Counter[tuple[str, date]] = Counter()
    won: Counter[tuple[str, date]] = Counter()
    hourly: Counter[tuple[str, date, int]] = Counter()
    rng = random.Random(seed)
    for deal in deals:
        scopes = _scopes(deal["sales_agent"], teams)
        if deal["engage_date"]:
            day = date.fromisoformat(deal["engage_date"])
            hour = 9 + rng.choices(range(9), weights=HOUR_PROFILE)[0]
            for scope in scopes:
                created[(scope, day)] += 1
                hourly[(scope, day, hour)] += 1
        if deal["deal_stage"] == "Won" and deal["close_date"]:
            for scope in scopes:
                won[(scope, date.fromisoformat(deal["close_date"]))] += 1
    scope_names = sorted({s for s, _ in created}, key=lambda s: (s != "global", s))
    c_days = sorted(d for _, d in created)
    w_days = sorted(d for _, d in won)
    out: list[Series] = []
    for kpi, counter, first, last in (
        ("new_deals", created, c_days[0], c_days[-1]),
        ("deals_won", won, w_days[0], w_days[-1]),
    ):
        for scope in scope_names:
            values = _daily(counter, scope, first, last)
            ts = [_epoch(first + timedelta(days=i)) for i in range(len(values))]
            scored = max((RAMP_END - first).days, 0)
            down = (WIND_DOWN - first).days if kpi == "new_deals" else None
            out.append(Series(f"maven/{kpi}/{scope}/day", DAY, ts, values, scored_from=scored,
                              wind_down_from=down))  # fmt: skip
    first, last = c_days[0], c_days[-1]
    for scope in [s for s in scope_names if not s.startswith("team:")]:
        ts, values = [], []
        for i in range((last - first).days + 1):
            day = first + timedelta(days=i)
            for hour in range(24):
                ts.append(_epoch(day, hour))
                values.append(float(hourly[(scope, day, hour)]))
        scored = max((RAMP_END - first).days, 0) * 24
        down = (WIND_DOWN - first).days * 24
        out.append(Series(f"maven/new_deals/{scope}/hour", HOUR, ts, values, scored_from=scored,
                          wind_down_from=down))  # fmt: skip
    return out


# ---------------------------------------------------------------- synthetic series
def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam > 50.0:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _month_end(day: date) -> bool:
    return (day + timedelta(days=3)).month != day.month


def synthetic_series(seed: int = 23) -> list[Series]:
    rng = random.Random(seed)
    start = date(2023, 1, 2)
    out: list[Series] = []
    for name, mean in (("syn_daily_counts", 8.0), ("syn_daily_small", 2.5)):
        ts, values = [], []
        for i in range(3 * 365):
            day = start + timedelta(days=i)
            lam = mean * (1.0 + 0.2 * i / 365.0)
            lam *= 0.2 if day.weekday() >= 5 else (1.3 if day.weekday() == 0 else 1.0)
            lam *= 1.8 if _month_end(day) else 1.0
            lam *= rng.gammavariate(8.0, 1.0 / 8.0)  # over-dispersion (negative binomial)
            ts.append(_epoch(day))
            values.append(float(_poisson(rng, lam)))
        out.append(Series(f"synthetic/{name}/day", DAY, ts, values, source="synthetic"))
    ts, values, noise = [], [], 0.0
    for i in range(3 * 365):
        day = start + timedelta(days=i)
        noise = 0.7 * noise + rng.gauss(0.0, 0.03)
        level = 1e6 * (0.9 if day.weekday() >= 5 else 1.0) * (1.15 if _month_end(day) else 1.0)
        ts.append(_epoch(day))
        values.append(round(level * (1.0 + noise), 2))
    out.append(Series("synthetic/syn_daily_value/day", DAY, ts, values, source="synthetic"))
    for name, busy in (("syn_hourly_counts", 4.0), ("syn_hourly_small", 1.2)):
        ts, values = [], []
        for i in range(365 * 24):
            at = _epoch(start) + i * HOUR
            day, hour = start + timedelta(days=i // 24), i % 24
            working = day.weekday() < 5 and 9 <= hour < 18
            lam = (busy * (0.6 if hour == 12 else 1.0)) if working else 0.2
            ts.append(at)
            values.append(float(_poisson(rng, lam)))
        out.append(Series(f"synthetic/{name}/hour", HOUR, ts, values, source="synthetic"))
    return out


# ---------------------------------------------------------------- injection
def noise_sd(values: list[float], lag: int, keep: list[int] | None = None) -> float:
    """Robust sd of the series' noise: MAD of lag differences / (0.6745 * sqrt 2), at
    least the Poisson sd of the mean; over the indices ``keep`` only when given."""
    idx = [i for i in (keep if keep is not None else range(len(values))) if i >= lag]
    diffs = sorted(abs(values[i] - values[i - lag]) for i in idx)
    mad = diffs[len(diffs) // 2] if diffs else 0.0
    mean = sum(values[i] for i in idx) / max(len(idx), 1)
    return max(mad / (0.6745 * math.sqrt(2.0)), math.sqrt(max(mean, 0.0)), 1e-9)


def working_hours(series: Series) -> list[int] | None:
    """Indices scored (from ``scored_from``) of an hourly series at 09:00-17:59 UTC (where its
    activity is); of a daily series with a ramp, the scored ones; else None (all)."""
    first = series.scored_from
    if not series.hourly:
        return list(range(first, len(series.ts))) if first else None
    return [
        i
        for i in range(first, len(series.ts))
        if 9 <= datetime.fromtimestamp(series.ts[i], UTC).hour < 18
    ]


def _is_count(values: list[float]) -> bool:
    return all(v >= 0 and v == int(v) for v in values)


def _working_start(series: Series, index: int) -> int:
    """The next index at 09:00 on a weekday (hourly series), or ``index`` (daily)."""
    if not series.hourly:
        return index
    while index < len(series.ts):
        at = datetime.fromtimestamp(series.ts[index], tz=UTC)
        if at.hour == 9 and at.weekday() < 5:
            return index
        index += 1
    return index


def _length(kind: str, hourly: bool) -> int:
    daily = {"spike": 1, "dip": 3, "level_shift": 21, "trend_change": 28,
             "seasonality_break": 21, "flatline": 3}  # fmt: skip
    hours = {"spike": 1, "dip": 8, "level_shift": 72, "trend_change": 120,
             "seasonality_break": 120, "flatline": 8}  # fmt: skip
    return (hours if hourly else daily)[kind]


def inject(series: Series, seed: int) -> Series:
    """A copy of ``series`` with one anomaly of each kind (see the module doc)."""
    rng = random.Random(seed)
    values = list(series.values)
    count = _is_count(values)
    lag = 168 if series.hourly else 7
    # the noise of the regime scored (a ramp's small counts would shrink it); hourly:
    # working hours only (nights would shrink it)
    sd = noise_sd(values, lag, working_hours(series))
    warm = 21 * 24 if series.hourly else 42  # never inside the detectors' warm-up
    warm = max(warm, series.scored_from)
    gap = 48 if series.hourly else 10  # calm points between two anomalies
    kinds = list(KINDS)
    rng.shuffle(kinds)
    room = len(values) - warm - 7 * 24 if series.hourly else len(values) - warm - 7
    total = sum(_length(k, series.hourly) + gap for k in kinds)
    slack = max(room - total, 0)
    cuts = sorted(rng.randint(0, slack) for _ in kinds)
    labels: list[Anomaly] = []
    position = warm
    previous_cut = 0
    for n, kind in enumerate(kinds):
        position += cuts[n] - previous_cut
        previous_cut = cuts[n]
        working = kind in ("spike", "dip", "flatline")
        start = _working_start(series, position) if working else position
        if kind == "spike" and series.hourly:
            start += 2  # 11:00, a busy hour
        length = _length(kind, series.hourly)
        end = min(start + length - 1, len(values) - 1)
        _apply(kind, values, series, start, end, sd, count, n % 2 == 0)
        labels.append(Anomaly(kind, start, end))
        position = end + 1 + gap
    return Series(
        series.name, series.step_s, series.ts, values, labels, series.source, series.scored_from,
        series.wind_down_from,
    )  # fmt: skip


def _round(value: float, count: bool) -> float:
    return float(max(0, round(value))) if count else value


def _apply(kind: str, values: list[float], series: Series, start: int, end: int, sd: float,
           count: bool, up: bool) -> None:  # fmt: skip
    if kind == "spike":
        values[start] = _round(values[start] + max(5.0 * sd, 4.0 if count else 0.0), count)
    elif kind == "dip":
        for i in range(start, end + 1):
            values[i] = _round(values[i] * 0.25, count)
    elif kind == "level_shift":
        factor = 1.6 if up else 0.5
        for i in range(start, end + 1):
            values[i] = _round(values[i] * factor, count)
    elif kind == "trend_change":
        span = max(end - start, 1)
        for i in range(start, end + 1):
            values[i] = _round(values[i] * (1.0 + (i - start) / span), count)
    elif kind == "seasonality_break":
        if series.hourly:
            original = list(values[start : end + 1 + 8])
            for i in range(start, end + 1):
                values[i] = original[i - start + 8] if i - start + 8 < len(original) else 0.0
        else:
            for i in range(start, end + 1):
                weekend = datetime.fromtimestamp(series.ts[i], tz=UTC).weekday() >= 5
                values[i] = _round(values[i] * (3.0 if weekend else 0.6), count)
    elif kind == "flatline":
        stuck = 0.0 if count else values[start - 1]
        for i in range(start, end + 1):
            values[i] = stuck


#: Seeds of the splits, per set of series: (hour spread of the Maven deals, synthetic noise,
#: first injection seed). ``eval`` is the reported, held-out table; ``tune`` (4 sets: 116
#: series, 696 anomalies) is where the defaults are chosen.
SPLITS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "eval": ((17, 23, 1000),),
    "tune": ((71, 29, 5000), (72, 31, 6000), (73, 37, 7000), (74, 41, 8000)),
}


def labelled_series(root: Path = MAVEN, split: str = "eval") -> list[Series]:
    """Every series of the harness, anomalies injected (seed = first seed + position).

    ``split="eval"``: the reported evaluation. ``split="tune"``: the tuning split, the same
    generators with other seeds, four times: other synthetic realisations, other hour spreads
    of the Maven deals, other positions and order of the injected anomalies (the Maven daily
    counts themselves are the one real sample, shared by both splits)."""
    out: list[Series] = []
    for hours, noise, first in SPLITS[split]:
        clean = maven_series(root, seed=hours) + synthetic_series(seed=noise)
        out += [inject(s, first + i) for i, s in enumerate(clean)]
    return out


def clean_series(root: Path = MAVEN, split: str = "eval") -> list[Series]:
    """The series of :func:`labelled_series` before injection, in the same order (what
    the oracle of :mod:`benchmarks.anomaly_oracle` knows)."""
    out: list[Series] = []
    for hours, noise, _first in SPLITS[split]:
        out += maven_series(root, seed=hours) + synthetic_series(seed=noise)
    return out
