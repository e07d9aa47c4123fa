"""The oracle of the anomaly harness: exact tails, the true models, alarms at a budget."""

from __future__ import annotations

import math

from benchmarks.anomaly_bench import oracle_at_budget, oracle_scores
from benchmarks.anomaly_oracle import (
    Model,
    alarms_at,
    chi2_even_tail,
    count_tails,
    model_of,
    surprises,
    two_sided,
)
from benchmarks.anomaly_series import Series, inject, synthetic_series


def test_poisson_mid_p_tails_by_hand() -> None:
    lo, up = count_tails(0, 1.0, math.inf)
    assert math.isclose(lo, 0.5 * math.exp(-1.0)) and math.isclose(up, 1.0 - 0.5 * math.exp(-1.0))
    lo, up = count_tails(2, 1.0, math.inf)  # P(0) + P(1) + P(2)/2
    assert math.isclose(lo, math.exp(-1.0) * (1.0 + 1.0 + 0.25))
    assert math.isclose(lo + up, 1.0)


def test_negative_binomial_tail_is_wider_than_poisson_and_tends_to_it() -> None:
    poisson = count_tails(9, 2.0, math.inf)[1]
    assert count_tails(9, 2.0, 2.0)[1] > 10 * poisson
    assert math.isclose(count_tails(9, 2.0, 1e7)[1], poisson, rel_tol=1e-3)


def test_far_tails_stay_positive_and_monotone() -> None:
    tails = [count_tails(x, 1.0, math.inf)[1] for x in (20, 30, 40)]
    assert all(t > 0.0 for t in tails) and tails[0] > tails[1] > tails[2]
    assert 40 < two_sided(*count_tails(40, 1.0, math.inf)) <= 50.0
    assert two_sided(*count_tails(3, 0.0, math.inf)) == 50.0  # impossible: the cap


def test_chi2_even_tail_closed_forms() -> None:
    assert math.isclose(chi2_even_tail(3.0, 1), math.exp(-1.5))
    assert math.isclose(chi2_even_tail(3.0, 2), math.exp(-1.5) * 2.5)
    assert chi2_even_tail(0.0, 5) == 1.0


def test_alarms_hold_back_a_run_and_its_flicker() -> None:
    scores = [0, 5, 5, 0, 5, 0, 0, 0, 5, 0]
    assert alarms_at(scores, 4.0, hold=2) == [1, 8]
    assert alarms_at(scores, 4.0, hold=0) == [1, 2, 4, 8]


def test_synthetic_model_is_the_generator_and_sees_the_injected_spike() -> None:
    clean = synthetic_series()[0]  # syn_daily_counts: weekday mean 8, x0.2 weekends
    model = model_of(clean)
    assert model.r == 8.0 and math.isclose(model.mu[0], 8.0 * 1.3)  # 2023-01-02, a Monday
    spiked = list(clean.values)
    spiked[200] = 60.0  # far beyond the generator's negative binomial (mean about 9)
    scores = surprises(Series(clean.name, clean.step_s, clean.ts, spiked), model)
    calm = sorted(surprises(clean, model))
    assert scores[200] > 8.0 and calm[len(calm) // 2] < 1.0


def test_gaussian_model_flags_a_stuck_value() -> None:
    ts = [i * 86400.0 for i in range(40)]
    values = [1e6 * (1.0 + 0.01 * ((i * 7) % 5 - 2)) for i in range(40)]
    values[30] = values[29]
    series = Series("v", 86400.0, ts, values)
    scores = surprises(series, Model([1e6] * 40, gauss=True))
    assert scores[30] == 50.0 and scores[10] < 50.0


def test_threshold_meets_the_budget() -> None:
    clean = synthetic_series()[:2]
    series = [inject(s, 3 + i) for i, s in enumerate(clean)]
    scores = oracle_scores(series, clean)
    loose, _ = oracle_at_budget(series, scores, 1.0)
    strict, level = oracle_at_budget(series, scores, 0.05)
    assert strict.fa_per_month <= 0.05 < loose.fa_per_month or loose.fa_per_month <= 1.0
    assert strict.false_alarms <= loose.false_alarms and level > 0.0


def _maven_like(values: list[float]) -> Series:
    return Series("maven/new_deals/team:X/day", 86400.0, [i * 86400.0 for i in range(len(values))],
                  values)  # fmt: skip


def test_causal_oracle_mean_ignores_the_future_and_the_centred_one_does_not() -> None:
    values = [float(1 + i % 3) for i in range(120)]
    later = list(values)
    later[70:100] = [30.0] * 30  # a real burst after day 60
    change = {}
    for causal in (True, False):
        before = model_of(_maven_like(values), causal=causal).mu[60]
        after = model_of(_maven_like(later), causal=causal).mu[60]
        change[causal] = abs(after / before - 1.0)
    # the causal mean moves only through the weekday factors (learnt on the whole series)
    assert change[True] < 0.2 and change[False] > 1.0
