"""Helpers of the anomaly detector's unit tests: seeded counts, a feeder, the calendar."""

from __future__ import annotations

import math
import random

from streams.anomaly import AnomalyDetector

DAY = 86400.0
HOUR = 3600.0
MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday


def poisson(rng: random.Random, lam: float) -> float:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return float(k)


def feed(det: AnomalyDetector, values: list[float], start: float = MONDAY,
         step: float = DAY) -> list[int]:  # fmt: skip
    """Update ``det`` with ``values`` ``step`` seconds apart; indices of the episode onsets."""
    onsets = []
    for i, v in enumerate(values):
        det.update(start + i * step, v)
        if det.onset:
            onsets.append(i)
    return onsets
