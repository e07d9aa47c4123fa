"""The first detector (kept as a baseline): an exponentially weighted mean and sd, z-score.

It is what ``kpi_anomaly`` used before :class:`~streams.anomaly.detector.AnomalyDetector`;
the anomaly benchmark scores it beside the new detector. API::

    detector = EwmaDetector(half_life=30, warmup=20)
    for ts, value in series:
        score = detector.update(ts, value)   # score of this point, in [0, 1]
        if score >= 0.99: ...

How it works: an exponentially weighted mean and variance (weight of a point halves after
``half_life`` points) describe the series' usual level and variability. A new point gets the
z-score ``|x - mean| / sd`` *against the model before it* and the score
``erf(z / sqrt(2))``: the probability mass of a normal within ``z`` sd, so 0.95 ~ 2 sd,
0.99 ~ 2.6 sd, 0.999 ~ 3.3 sd. Then the point is learnt. During the first ``warmup`` points
the score is 0 (never fires). ``sd`` has a floor (``min_rel_sd`` of the level, plus
``min_abs_sd``) so a flat series does not make every tiny change infinitely surprising.
``direction`` limits the score to rises (``up``) or drops (``down``).

Cost: O(1) time and memory per point, a handful of float operations (see
``benchmarks/anomaly_bench.py`` for the measured points/s). State is a small dict
(``to_dict``/``from_dict``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_SQRT2 = math.sqrt(2.0)


@dataclass(slots=True)
class EwmaDetector:
    half_life: float = 30.0
    warmup: int = 20
    direction: str = "both"
    min_rel_sd: float = 0.01
    min_abs_sd: float = 1e-9
    n: int = 0
    mean: float = 0.0
    var: float = 0.0
    last_ts: float | None = None
    _alpha: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.half_life <= 0:
            raise ValueError(f"half_life must be > 0, got {self.half_life}")
        if self.warmup < 2:
            raise ValueError(f"warmup must be >= 2, got {self.warmup}")
        if self.direction not in ("both", "up", "down"):
            raise ValueError(f"direction must be both, up or down, got {self.direction!r}")
        self._alpha = 1.0 - 0.5 ** (1.0 / self.half_life)

    @property
    def alpha(self) -> float:
        """Weight of a new point once warm: ``1 - 0.5 ** (1 / half_life)``."""
        return self._alpha

    @property
    def warm(self) -> bool:
        return self.n >= self.warmup

    def sd(self) -> float:
        floor = max(self.min_abs_sd, self.min_rel_sd * abs(self.mean))
        return max(math.sqrt(self.var), floor)

    def score(self, value: float) -> float:
        """Score of ``value`` against the current model, without learning it."""
        if not self.warm or not math.isfinite(value):
            return 0.0
        deviation = value - self.mean
        if (self.direction == "up" and deviation < 0) or (
            self.direction == "down" and deviation > 0
        ):
            return 0.0
        return math.erf(abs(deviation) / (self.sd() * _SQRT2))

    def learn(self, ts: float, value: float) -> None:
        if not math.isfinite(value):
            return
        self.last_ts = ts
        self.n += 1
        if self.n == 1:
            self.mean, self.var = value, 0.0
            return
        # during warm-up a plain running average (weight 1/n) learns faster than the EWMA
        a = self._alpha if self._alpha * self.n >= 1.0 else 1.0 / self.n
        delta = value - self.mean
        self.mean += a * delta
        self.var = (1.0 - a) * (self.var + a * delta * delta)

    def update(self, ts: float, value: float) -> float:
        """Score ``value`` (seen at epoch seconds ``ts``) then learn it; returns the score."""
        result = self.score(value)
        self.learn(ts, value)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "m": self.mean, "v": self.var, "t": self.last_ts}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any] | None, *, half_life: float, warmup: int, direction: str
    ) -> EwmaDetector:
        det = cls(half_life=half_life, warmup=warmup, direction=direction)
        if data:
            det.n, det.mean, det.var = int(data["n"]), float(data["m"]), float(data["v"])
            det.last_ts = data.get("t")
        return det
