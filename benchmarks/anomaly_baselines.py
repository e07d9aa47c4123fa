"""Classical online detectors scored beside ours by the anomaly harness (pure).

Each has ``update(ts, value) -> score in [0, 1]`` like :class:`streams.anomaly.AnomalyDetector`
and keeps O(window) state:

* :class:`WindowedGaussian`: mean and sd of the last ``window`` points, two-sided normal tail
  of the z-score (the "windowed Gaussian" of the Numenta Anomaly Benchmark);
* :class:`SeasonalNaiveZ`: the seasonal-naive forecast (the value one season ago, Hyndman &
  Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 5.2) and the z-score of
  its error against the last ``window`` errors.
"""

from __future__ import annotations

import math
from collections import deque

_SQRT2 = math.sqrt(2.0)


class WindowedGaussian:
    def __init__(self, window: int = 28, warmup: int = 20) -> None:
        self.window = window
        self.warmup = warmup
        self.buf: deque[float] = deque()
        self.total = 0.0
        self.total2 = 0.0

    def update(self, ts: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        buf = self.buf
        score = 0.0
        n = len(buf)
        if n >= self.warmup:
            mean = self.total / n
            var = max(self.total2 / n - mean * mean, 0.0)
            sd = max(math.sqrt(var), 1e-9, 0.01 * abs(mean))
            score = math.erf(abs(value - mean) / (sd * _SQRT2))
        buf.append(value)
        self.total += value
        self.total2 += value * value
        if len(buf) > self.window:
            old = buf.popleft()
            self.total -= old
            self.total2 -= old * old
        return score


class SeasonalNaiveZ:
    def __init__(self, period: int = 7, window: int = 28, warmup: int = 20) -> None:
        self.period = period
        self.history: deque[float] = deque(maxlen=period)
        self.errors = WindowedGaussian(window=window, warmup=warmup)

    def update(self, ts: float, value: float) -> float:
        if not math.isfinite(value):
            return 0.0
        score = 0.0
        if len(self.history) == self.period:
            score = self.errors.update(ts, value - self.history[0])
        self.history.append(value)
        return score
