"""Counts on the Anscombe scale: the transform, its inverse, and what the detector makes of
small, bursty and fractional counts; states of the previous versions."""

from __future__ import annotations

import math
import random

import pytest

from streams.anomaly import AnomalyDetector
from streams.anomaly.counts import Y0, anscombe, count_of, count_sd, level_of
from tests.unit.anomaly_fixtures import DAY, MONDAY, feed, poisson


def test_anscombe_inverse_is_unbiased_and_exact_at_zero() -> None:
    for lam in (0.5, 1.0, 2.0, 5.0, 10.0, 100.0):
        mean_y, p = 0.0, math.exp(-lam)
        for k in range(400):  # the exact mean of anscombe(X), X ~ Poisson(lam)
            mean_y += p * anscombe(float(k))
            p *= lam / (k + 1)
        assert count_of(mean_y) == pytest.approx(lam, rel=0.01)
        assert count_of(level_of(lam)) == pytest.approx(lam, rel=1e-6)
    assert anscombe(0.0) == Y0 and count_of(Y0) == 0.0 and level_of(0.0) == Y0
    assert count_sd(1.0, 9.0) == pytest.approx(math.sqrt(9.375))


def test_a_drop_to_zero_is_rarer_than_a_small_count_tripling() -> None:
    rng = random.Random(12)
    busy, quiet = AnomalyDetector(season="none"), AnomalyDetector(season="none")
    feed(busy, [poisson(rng, 9.0) for _ in range(300)])
    feed(quiet, [poisson(rng, 1.0) for _ in range(300)])
    busy.update(MONDAY + 300 * DAY, 0.0)
    quiet.update(MONDAY + 300 * DAY, 3.0)
    assert busy.surprise > 2.0 > 1.0 > quiet.surprise  # Poisson: P(0 | 9) = 1e-4, P(>=3 | 1) = 0.08
    assert busy.component == "dip" and busy.expected == pytest.approx(9.0, abs=1.5)
    low, high = quiet.band()
    assert 0.0 <= low < 1.0 < high and quiet.sd_last == pytest.approx(1.0, abs=0.4)


def test_over_dispersed_bursts_are_not_extreme() -> None:
    rng = random.Random(14)  # gamma-Poisson counts (shape 4): sd 5.5 at mean 8, not 2.8
    values = [poisson(rng, 8.0 * rng.gammavariate(4.0, 0.25)) for _ in range(3000)]
    onsets = feed(AnomalyDetector(season="none", threshold=0.999), values)
    # 1 % of the points (30 here); counts scored on their own scale with a Poisson floor
    # flagged 2 % (63), a Poisson sd alone would flag 5 %
    assert len(onsets) <= 40


def test_a_count_series_that_turns_fractional_keeps_what_it_learnt() -> None:
    rng = random.Random(15)
    det = AnomalyDetector(season="none")
    feed(det, [poisson(rng, 20.0) for _ in range(200)])
    assert det.is_count
    det.update(MONDAY + 200 * DAY, 20.5)
    assert not det.is_count and not det.onset
    assert det.expected == pytest.approx(20.0, abs=2.0) and det.sd_last == pytest.approx(
        4.5, abs=1.5
    )


def test_state_of_the_previous_versions_is_read_as_a_level_and_a_scale() -> None:
    ewma = AnomalyDetector.from_dict({"n": 40, "m": 10.0, "v": 4.0, "t": MONDAY})
    assert ewma.n == 40 and ewma.mean == pytest.approx(10.0)
    v2 = AnomalyDetector().to_dict() | {"ver": 2, "n": 50, "l": 25.0, "s": 5.0, "c": True}
    det = AnomalyDetector.from_dict(v2)
    assert det.is_count and det.mean == pytest.approx(25.0) and det.n == 50
    assert det.scale == pytest.approx(1.0, abs=0.01)  # 5 counts at 25 is one Poisson sd
