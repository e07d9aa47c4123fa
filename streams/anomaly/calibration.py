"""From tail probabilities to a score in [0, 1] that never saturates (pure).

Every component of the detector reports a *surprise*: ``-log10(p)``, where ``p`` is the
probability of seeing something at least as extreme under the learnt baseline. The score is
``1 - p`` while ``p >= 10**-KNEE`` (so a threshold of 0.99 means "p below 1 %", calibrated),
and beyond the knee the surprise is compressed so that the score keeps growing without ever
reaching 1.0 in floating point: a 10-sigma point still ranks above a 6-sigma one.
"""

from __future__ import annotations

import math
from functools import lru_cache

#: Surprise (-log10 p) up to which ``score = 1 - p`` exactly.
KNEE = 4.0
#: Extra decades the compressed tail may add above the knee (the score stays < 1 - 1e-8).
TAIL_DECADES = 4.0
#: Surprise scale of the compressed tail: 63 % of ``TAIL_DECADES`` is reached at KNEE + 8.
TAIL_SCALE = 8.0
#: Largest surprise reported (p = 1e-300; beyond it a float underflows).
MAX_SURPRISE = 300.0
_LN10 = math.log(10.0)
_SQRT2 = math.sqrt(2.0)


def score_of(surprise: float) -> float:
    """Monotone map of a surprise (>= 0) to [0, 1), calibrated up to ``1 - 10**-KNEE``."""
    if not surprise > 0.0:  # also NaN
        return 0.0
    if surprise <= KNEE:
        return 1.0 - math.pow(10.0, -surprise)
    s = min(surprise, MAX_SURPRISE)
    decades = KNEE + TAIL_DECADES * (1.0 - math.exp(-(s - KNEE) / TAIL_SCALE))
    return 1.0 - math.pow(10.0, -decades)


def surprise_of(score: float) -> float:
    """Inverse of :func:`score_of` (the surprise a threshold stands for)."""
    if score <= 0.0:
        return 0.0
    decades = -math.log10(max(1.0 - score, 1e-300))
    if decades <= KNEE:
        return decades
    frac = (decades - KNEE) / TAIL_DECADES
    if frac >= 1.0:
        return MAX_SURPRISE
    return KNEE - TAIL_SCALE * math.log(1.0 - frac)


def normal_surprise(z: float) -> float:
    """Surprise of a two-sided normal deviation of ``z`` sd: ``-log10(erfc(z / sqrt 2))``.

    Uses the asymptotic tail for large ``z`` so that it stays finite and monotone."""
    if not z > 0.0:
        return 0.0
    if z < 8.0:
        return -math.log10(math.erfc(z / _SQRT2))
    if z > 1e6:
        return MAX_SURPRISE
    # erfc(x) ~ exp(-x^2) / (x sqrt(pi)) with x = z / sqrt 2
    x = z / _SQRT2
    return min(MAX_SURPRISE, (x * x + math.log(x * math.sqrt(math.pi))) / _LN10)


@lru_cache(maxsize=256)
def z_for_surprise(surprise: float) -> float:
    """The two-sided normal deviation whose surprise is ``surprise`` (bisection, cached)."""
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if normal_surprise(mid) < surprise:
            lo = mid
        else:
            hi = mid
    return hi
