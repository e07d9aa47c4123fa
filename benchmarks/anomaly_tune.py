"""Grid search of the detector's knobs on the anomaly harness (how the defaults were chosen).

Run: ``python benchmarks/anomaly_tune.py``. Prints precision, recall, F1 and false alarms
per series-month of :class:`streams.anomaly.AnomalyDetector` for each combination, best F1
first, and marks the combinations whose recall is at least the current detector's.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from benchmarks.anomaly_bench import evaluate
from benchmarks.anomaly_series import labelled_series

GRID: dict[str, list[Any]] = {
    "threshold": [0.995, 0.998, 0.999],
    "half_life": [30.0, 60.0],
    "shift_k": [0.5, 1.0],
    "cooldown": [3, 10],
}


def main() -> None:
    series = labelled_series()
    current = evaluate(series)["ewma-z (current)"][0]
    print(f"current detector: recall {current.recall:.2f}, "
          f"false alarms / series-month {current.fa_per_month:.2f}")  # fmt: skip
    rows = []
    for combo in itertools.product(*GRID.values()):
        config = dict(zip(GRID, combo, strict=True))
        tally, _ = evaluate(series, config, only_new=True)["kpi-anomaly (new)"]
        rows.append((tally.f1, config, tally))
    rows.sort(key=lambda row: -row[0])
    for f1, config, t in rows:
        mark = "*" if t.recall >= current.recall else " "
        print(f"{mark} F1 {f1:.2f}  P {t.precision:.2f}  R {t.recall:.2f}  "
              f"FA/series-month {t.fa_per_month:.2f}  {config}")  # fmt: skip


if __name__ == "__main__":
    main()
