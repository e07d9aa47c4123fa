"""Cost per point of the online anomaly detector (and of the full kpi_anomaly evaluation).

Run: ``python benchmarks/anomaly_detector.py [points]``. Prints ns/point for:
  * ``AnomalyDetector.update`` alone (the pure detector) on a daily and an hourly series of
    values, and on an hourly series of small counts (Anscombe scale, day totals),
  * baselines measured in the same run: a plain running mean (``sum += x``), the floor of
    any per-point Python work, and ``EwmaDetector.update`` (the previous detector),
  * ``kpi_anomaly.evaluate_kpi`` (state dict -> detector -> state dict), what the engine
    pays per KPI snapshot before serialisation.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's streams

from streams.anomaly import AnomalyDetector, EwmaDetector
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import KpiAnomalyRule, parse_rule
from streams.rules.types.kpi_anomaly import evaluate_kpi


def bench(label: str, n: int, run: object) -> float:
    start = time.process_time_ns()
    run()  # type: ignore[operator]
    ns = (time.process_time_ns() - start) / n
    print(f"{label:<48} {ns:>10.0f} ns/point (CPU time)")
    return ns


def main(n: int = 200_000) -> None:
    rng = random.Random(1)
    values = [rng.gauss(100.0, 5.0) for _ in range(n)]

    def baseline() -> None:
        total = 0.0
        for count, v in enumerate(values, start=1):
            total += v
            _ = total / count

    def ewma() -> None:
        det = EwmaDetector(half_life=30, warmup=20)
        for ts, v in enumerate(values):
            det.update(float(ts), v)

    def daily() -> None:
        det = AnomalyDetector()
        for i, v in enumerate(values):
            det.update(i * 86400.0, v)

    def hourly() -> None:
        det = AnomalyDetector()
        for i, v in enumerate(values):
            det.update(i * 3600.0, v)

    counts = [float(round(v / 10.0)) for v in values]  # small integers: the count scale

    def hourly_counts() -> None:
        det = AnomalyDetector()
        for i, v in enumerate(counts):
            det.update(i * 3600.0, v)

    rule = parse_rule({"id": "b", "type": "kpi_anomaly", "kpi": "k", "message": "m"})
    assert isinstance(rule, KpiAnomalyRule)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    points = [
        KpiPoint("k", "global", "all", "day", v, 0.9, False, t0 + timedelta(seconds=i))
        for i, v in enumerate(values[: n // 4])
    ]

    def engine_path() -> None:
        state: dict[str, object] = {}
        for p in points:
            out = evaluate_kpi(rule, p, state, p.computed_at)
            state = dict(out.state or state)

    print(f"{n} points, Python {sys.version.split()[0]}")
    base = bench("baseline: running mean", n, baseline)
    old = bench("baseline: EwmaDetector.update (previous)", n, ewma)
    det = bench("AnomalyDetector.update (daily, weekly profile)", n, daily)
    bench("AnomalyDetector.update (hourly, hour-of-week)", n, hourly)
    bench("AnomalyDetector.update (hourly counts, day totals)", n, hourly_counts)
    bench("kpi_anomaly.evaluate_kpi (with state dicts)", len(points), engine_path)
    print(
        f"detector / running mean: {det / base:.1f}x; detector / previous: {det / old:.1f}x; "
        f"{1e9 / det:,.0f} points/s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
