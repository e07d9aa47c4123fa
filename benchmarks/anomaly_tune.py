"""Grid search of the detector's knobs on the *tuning* split (how the defaults were chosen).

Run: ``python benchmarks/anomaly_tune.py``. Scores :class:`streams.anomaly.AnomalyDetector`
for each combination on ``labelled_series(split="tune")`` (other seeds than the reported
``eval`` split, four sets of them: other synthetic realisations, other hour spreads of the
Maven deals, other positions and order of the injected anomalies; 696 anomalies), best F1
first, marks the combinations whose
recall is at least the current (EWMA) detector's on that split, and says where the defaults
rank. A default moves only when another setting beats it by more than ``NOISE`` F1.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from benchmarks.anomaly_bench import evaluate
from benchmarks.anomaly_series import labelled_series
from streams.anomaly import AnomalyDetector

GRID: dict[str, list[Any]] = {
    "threshold": [0.99, 0.995, 0.998],
    "shift_k": [0.75, 1.0, 1.25],
    "cooldown": [5, 10, 20],
    "half_life": [30.0, 60.0],
}
#: F1 differences below this are noise (the four sets' F1 spread about 0.03 at one setting).
NOISE = 0.01


def main() -> None:
    series = labelled_series(split="tune")
    current = evaluate(series)["ewma-z (current)"][0]
    print(f"tuning split; current detector: recall {current.recall:.2f}, "
          f"false alarms / series-month {current.fa_per_month:.2f}")  # fmt: skip
    defaults = AnomalyDetector().config()
    rows = []
    for combo in itertools.product(*GRID.values()):
        config = dict(zip(GRID, combo, strict=True))
        tally, _ = evaluate(series, config, only_new=True)["kpi-anomaly (new)"]
        rows.append((tally.f1, config, tally))
    rows.sort(key=lambda row: -row[0])
    for f1, config, t in rows:
        mark = "*" if t.recall >= current.recall else " "
        default = " (defaults)" if all(defaults[k] == v for k, v in config.items()) else ""
        print(f"{mark} F1 {f1:.3f}  P {t.precision:.2f}  R {t.recall:.2f}  "
              f"FA/series-month {t.fa_per_month:.2f}  {config}{default}")  # fmt: skip
    best = rows[0][0]
    mine = next(f1 for f1, config, _ in rows if all(defaults[k] == v for k, v in config.items()))
    verdict = "keep them" if best - mine <= NOISE else "move them"
    print(f"defaults: F1 {mine:.3f}, best {best:.3f}: {verdict}")


if __name__ == "__main__":
    main()
