"""The anomaly harness: every detector on the same labelled series, one table.

Run: ``python benchmarks/anomaly_bench.py`` (``make bench-anomaly``): the held-out ``eval``
split; ``--split tune`` scores the tuning split the defaults were chosen on
(:mod:`benchmarks.anomaly_tune`). Series and injected anomalies:
:mod:`benchmarks.anomaly_series`; scoring: :mod:`benchmarks.anomaly_eval`.
Detectors, each at its documented default, alarms = episode onsets:

* ``kpi-anomaly (new)``: :class:`streams.anomaly.AnomalyDetector` (its own episodes:
  hysteresis and cooldown);
* ``ewma-z (current)``: :class:`streams.anomaly.EwmaDetector`, half-life 30, warm-up 20,
  threshold 0.99, one alarm per run of points at or above it (the rule's cooldown was 0);
* ``windowed-gaussian``: last 4 weeks (28 daily / 672 hourly points), threshold 0.99;
* ``seasonal-naive-z``: error of the value one season ago (7 days / 168 hours) against the
  last 4 weeks of errors, threshold 0.99.

Two reference rows, not detectors (:mod:`benchmarks.anomaly_oracle`): the *oracle* (true
clean mean and noise model, exact tails) and the *causal oracle* (Maven means from the clean
past only), each at the threshold where its false alarms per series-month equal the new
detector's.

``points/s``: the detector's ``update`` alone over every series, measured in this run as
CPU time of this process (one core; steady when other processes share the machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from benchmarks.anomaly_baselines import SeasonalNaiveZ, WindowedGaussian
from benchmarks.anomaly_eval import Tally, onsets, score_series
from benchmarks.anomaly_oracle import alarms_at, oracle_surprises
from benchmarks.anomaly_series import KINDS, MAVEN, SPLITS, Series, clean_series, labelled_series
from streams.anomaly import AnomalyDetector, EwmaDetector
from streams.anomaly.season import month_ends

THRESHOLD = 0.99


class Detector(Protocol):
    def update(self, ts: float, value: float) -> float: ...


def grace_of(series: Series) -> int:
    """Points after an anomaly's end in which an alarm still counts as its detection."""
    return 24 if series.hourly else 7


def run_new(series: Series, **config: Any) -> tuple[list[int], float]:
    det = AnomalyDetector(**config)
    alarms: list[int] = []
    start = time.process_time()
    update = det.update
    for i, (ts, value) in enumerate(zip(series.ts, series.values, strict=True)):
        update(ts, value)
        if det.onset:
            alarms.append(i)
    return alarms, time.process_time() - start


def run_scored(series: Series, make: Callable[[Series], Detector]) -> tuple[list[int], float]:
    det = make(series)
    start = time.process_time()
    update = det.update
    scores = [update(ts, value) for ts, value in zip(series.ts, series.values, strict=True)]
    elapsed = time.process_time() - start
    return onsets(scores, THRESHOLD), elapsed


def _window(series: Series) -> int:
    return 28 * 24 if series.hourly else 28


BASELINES: dict[str, Callable[[Series], Detector]] = {
    "ewma-z (current)": lambda s: EwmaDetector(half_life=30, warmup=20),
    "windowed-gaussian": lambda s: WindowedGaussian(window=_window(s), warmup=20),
    "seasonal-naive-z": lambda s: SeasonalNaiveZ(
        period=168 if s.hourly else 7, window=_window(s), warmup=20
    ),
}


def evaluate(
    series: list[Series], config: dict[str, Any] | None = None, only_new: bool = False
) -> dict[str, tuple[Tally, float]]:
    """name -> (tally, points/s) for the new detector (``config``) and the baselines."""
    out: dict[str, tuple[Tally, float]] = {}
    month_ends()  # the calendar table is built once, outside the timed loops
    runners: dict[str, Callable[[Series], tuple[list[int], float]]] = {
        "kpi-anomaly (new)": lambda s: run_new(s, **(config or {}))
    }
    if not only_new:
        for name, make in BASELINES.items():
            runners[name] = lambda s, make=make: run_scored(s, make)  # type: ignore[misc]
    for name, run in runners.items():
        tally, seconds, points = Tally(), 0.0, 0
        for s in series:
            alarms, elapsed = run(s)
            seconds += elapsed
            points += len(s.values)
            score_series(
                tally, alarms, s.labels, grace_of(s), s.months, 86400.0 / s.step_s,
                s.scored_from, s.wind_down_from,
            )  # fmt: skip
        out[name] = (tally, points / seconds if seconds else 0.0)
    return out


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(results: dict[str, tuple[Tally, float]], title: str) -> str:
    lines = [f"### {title}", ""]
    lines.append("| detector | precision | recall | F1 | false alarms / series-month "
                 "| median delay (points) | points/s |")  # fmt: skip
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, (t, pps) in results.items():
        lines.append(
            f"| {name} | {t.precision:.2f} | {t.recall:.2f} | {t.f1:.2f} | "
            f"{t.fa_per_month:.2f} | {_fmt(t.median_delay())} | {pps:,.0f} |"
        )
    lines += ["", "Recall per anomaly kind (median delay in points):", ""]
    lines.append("| detector | " + " | ".join(KINDS) + " |")
    lines.append("|---|" + "---:|" * len(KINDS))
    for name, (t, _) in results.items():
        cells = [f"{t.kind_hit[k]}/{t.kind_total[k]} ({_fmt(t.median_delay(k), 0)})" for k in KINDS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flatline_line(results: dict[str, tuple[Tally, float]]) -> str:
    """Silent feeds: how many were caught, and how much silence it took (in days, the
    first silent point counting as its whole step: 1 for a daily series, 1/24 hourly);
    "while still silent": before the injected silence ended (3 days / 8 working hours)."""
    lines = []
    for name, (t, _) in results.items():
        days = sorted(t.flatline_days)
        within = sum(1 for d in days if d <= 1.0)
        median = f"{days[len(days) // 2]:.2f}" if days else "-"
        lines.append(f"flatline, {name}: detected {len(days)}/{t.kind_total['flatline']}, "
                     f"{within} within one day of silence, {t.flatline_in_stretch} while still "
                     f"silent; median {median} days")  # fmt: skip
    return "\n".join(lines)


#: Stricter thresholds of the new detector, for comparisons at equal recall.
OPERATING_POINTS = (0.995, 0.999, 0.9999)


def operating_points(subsets: dict[str, list[Series]]) -> str:
    """False alarms at equal recall: the new detector at stricter thresholds beside the
    current one (its default), per subset; ``x fewer`` only where recall is not lower."""
    lines = ["### False alarms at equal or better recall", ""]
    lines.append("| series | detector | recall | false alarms / series-month | vs current |")
    lines.append("|---|---|---:|---:|---:|")
    for title, subset in subsets.items():
        current = evaluate(subset)["ewma-z (current)"][0]
        lines.append(f"| {title} | ewma-z (current) | {current.recall:.2f} | "
                     f"{current.fa_per_month:.3f} | - |")  # fmt: skip
        for threshold in OPERATING_POINTS:
            t = evaluate(subset, {"threshold": threshold}, only_new=True)["kpi-anomaly (new)"][0]
            if t.recall < current.recall:
                ratio = "recall lower"
            elif t.fa_per_month:
                ratio = f"{current.fa_per_month / t.fa_per_month:.1f}x fewer"
            else:
                ratio = "no false alarm"
            lines.append(f"| {title} | new, threshold {threshold} | {t.recall:.2f} | "
                         f"{t.fa_per_month:.3f} | {ratio} |")  # fmt: skip
    return "\n".join(lines)


def wind_down_line(results: dict[str, tuple[Tally, float]]) -> str:
    """How many false alarms fall in the Maven sample's documented wind-down (``WIND_DOWN``
    in :mod:`benchmarks.anomaly_series`): real, unlabelled events, scored as false alarms."""
    cells = [f"{name} {t.wind_down_false_alarms}/{t.false_alarms}" for name, (t, _) in
             results.items()]  # fmt: skip
    return "false alarms in the Maven sample's wind-down (new_deals from 2017-10-25): " + ", ".join(
        cells
    )


ORACLE = "*oracle (yardstick)*"
CAUSAL = "*causal oracle (yardstick)*"


def oracle_scores(
    series: list[Series], clean: list[Series], causal: bool = False
) -> list[list[float]]:
    """The oracle's surprises of every series (:mod:`benchmarks.anomaly_oracle`); an hourly
    Maven series is scored with the clean daily series it was spread from (the nearest one
    before it of the same name, in the same set)."""
    out = []
    for i, (s, c) in enumerate(zip(series, clean, strict=True)):
        daily = None
        if c.hourly and c.source == "maven":
            name = c.name.replace("/hour", "/day")
            daily = next(clean[j] for j in range(i, -1, -1) if clean[j].name == name)
        out.append(oracle_surprises(s, c, daily, causal))
    return out


def oracle_tally(series: list[Series], scores: list[list[float]], threshold: float) -> Tally:
    tally = Tally()
    for s, sc in zip(series, scores, strict=True):
        grace = grace_of(s)
        score_series(
            tally, alarms_at(sc, threshold, grace), s.labels, grace, s.months,
            86400.0 / s.step_s, s.scored_from, s.wind_down_from,
        )  # fmt: skip
    return tally


def oracle_at_budget(
    series: list[Series], scores: list[list[float]], budget: float
) -> tuple[Tally, float]:
    """The oracle at the lowest threshold (surprise) whose false alarms per series-month
    do not exceed ``budget`` (bisection: false alarms fall as the threshold rises)."""
    lo, hi = 1.0, 60.0  # below 1 decade runs merge: false alarms are not monotone
    for _ in range(30):
        mid = (lo + hi) / 2.0
        if oracle_tally(series, scores, mid).fa_per_month > budget:
            lo = mid
        else:
            hi = mid
    return oracle_tally(series, scores, hi), hi


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MAVEN, help="Maven CRM sample folder")
    parser.add_argument(
        "--split", choices=sorted(SPLITS), default="eval",
        help="eval: the reported, held-out series; tune: where the defaults are chosen",
    )  # fmt: skip
    args = parser.parse_args(argv)
    series = labelled_series(args.data, args.split)
    maven = [s for s in series if s.source == "maven"]
    synthetic = [s for s in series if s.source != "maven"]
    total = sum(len(s.values) for s in series)
    labels = sum(len(s.labels) for s in series)
    python = sys.version.split()[0]
    print(f"split {args.split}: {len(series)} series ({len(maven)} Maven CRM, "
          f"{len(synthetic)} synthetic), {total:,} points, {labels} injected anomalies; "
          f"Python {python}")  # fmt: skip
    everything = evaluate(series)
    budget = everything["kpi-anomaly (new)"][0].fa_per_month
    clean = clean_series(args.data, args.split)
    oracle, level = oracle_at_budget(series, oracle_scores(series, clean), budget)
    causal, causal_level = oracle_at_budget(series, oracle_scores(series, clean, True), budget)
    print()
    print(table({**everything, ORACLE: (oracle, 0.0), CAUSAL: (causal, 0.0)}, "All series"))
    print()
    print(f"oracle: true clean mean and noise model, threshold {level:.2f} decades (causal: "
          f"{causal_level:.2f}), set to the new detector's {budget:.3f} false alarms per "
          f"series-month (references, not detectors: they know the clean series)")  # fmt: skip
    print()
    print(flatline_line(everything))
    print(wind_down_line(everything))
    daily = [s for s in series if not s.hourly]
    hourly = [s for s in series if s.hourly]
    teams = [s for s in maven if not s.hourly and "/team:" in s.name]
    wide = [s for s in maven if not s.hourly and "/team:" not in s.name]
    for title, subset in (
        ("Maven CRM series", maven),
        ("Synthetic series", synthetic),
        ("Daily series", daily),
        ("Hourly series", hourly),
        ("Maven daily series of a team (1-3 events a day)", teams),
        ("Maven daily series of a region or the whole org", wide),
    ):
        print()
        print(table(evaluate(subset), title))
    print()
    print(operating_points({"All series": series, "Daily series": daily, "Hourly series": hourly}))
    new, current = everything["kpi-anomaly (new)"][0], everything["ewma-z (current)"][0]
    ratio = current.fa_per_month / new.fa_per_month if new.fa_per_month else float("inf")
    print()
    print(f"new vs current: F1 {new.f1:.2f} vs {current.f1:.2f}; recall {new.recall:.2f} vs "
          f"{current.recall:.2f}; false alarms per series-month {ratio:.1f}x fewer")  # fmt: skip


if __name__ == "__main__":
    main()
