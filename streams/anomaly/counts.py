"""Counts on a scale where their noise is normal: the Anscombe transform (pure).

A Poisson count ``x`` of rate ``lam`` has sd ``sqrt(lam)`` and a skewed law: on its own
scale, "3 deals instead of 1" looks like a 2-sigma rise and "0 instead of 9" like a 3-sigma
drop, although the first is common and the second rare. The Anscombe transform
``y = 2 sqrt(x + 3/8)`` (Anscombe 1948, *Biometrika* 35(3/4)) makes it nearly normal with
unit variance whatever ``lam`` (already within 10 % from ``lam = 1``), so one robust z-score,
one CUSUM and one learnt scale serve small and large counts alike; over-dispersion (a
gamma-Poisson KPI) shows up as a learnt scale above 1. A multiplicative weekly rhythm
(weekends x0.2) becomes close to additive, which the additive profile learns better.

Back to counts: :func:`count_of` is the closed-form approximation of the exact unbiased
inverse (Makitalo & Foi 2011, *IEEE Trans. Image Processing* 20(1)), exact at 0 (a slot that
never sees anything expects 0 events, which the flatline needs) and within 1 % of the
algebraic inverse beyond ``lam = 10``.
"""

from __future__ import annotations

import math

#: y of a zero count: the lowest value of the transformed scale.
Y0 = 2.0 * math.sqrt(0.375)
_A = 0.25 * math.sqrt(1.5)
_B = 0.625 * math.sqrt(1.5)


def anscombe(x: float) -> float:
    """``2 sqrt(x + 3/8)`` of a count (negative values as 0)."""
    return 2.0 * math.sqrt(x + 0.375) if x > 0.0 else Y0


def count_of(y: float) -> float:
    """Expected count whose transformed value is ``y`` (exact unbiased inverse, closed form)."""
    if y <= Y0:
        return 0.0
    inv = 1.0 / y
    lam = 0.25 * y * y + _A * inv - 1.375 * inv * inv + _B * inv * inv * inv - 0.125
    return lam if lam > 0.0 else 0.0


def level_of(lam: float) -> float:
    """The transformed value whose expected count is ``lam`` (inverse of :func:`count_of`,
    by Newton's method from Anscombe's ``2 sqrt(lam + 1/8)``)."""
    if lam <= 0.0:
        return Y0
    y = 2.0 * math.sqrt(lam + 0.125)
    for _ in range(8):
        err = count_of(y) - lam
        if -1e-12 < err < 1e-12:
            break
        y -= err / (0.5 * y)  # d count_of / dy ~ y / 2
    return y if y > Y0 else Y0


def count_sd(sd_y: float, lam: float) -> float:
    """An sd of the transformed scale in counts, near ``lam`` (delta method: dx/dy =
    ``sqrt(x + 3/8)``)."""
    return sd_y * math.sqrt(lam + 0.375)
