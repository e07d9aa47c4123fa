"""The anomaly harness's scoring and series (pure): what the benchmark table is made of."""

from __future__ import annotations

import itertools

from benchmarks.anomaly_baselines import SeasonalNaiveZ, WindowedGaussian
from benchmarks.anomaly_eval import Tally, onsets, score_series
from benchmarks.anomaly_series import KINDS, SPLITS, Anomaly, Series, inject, synthetic_series


def test_onsets_are_crossings_from_below() -> None:
    assert onsets([0.1, 0.995, 0.999, 0.2, 0.999, 0.999, 0.5], 0.99) == [1, 4]


def test_event_level_scoring() -> None:
    tally = Tally()
    labels = [Anomaly("spike", 10, 10), Anomaly("level_shift", 50, 70), Anomaly("dip", 90, 92)]
    # 12 detects the spike (within grace), 55 and 60 the shift, 30 is a false alarm
    score_series(tally, [12, 30, 55, 60], labels, grace=3, months=2.0, points_per_day=1.0)
    assert (tally.anomalies, tally.detected, tally.false_alarms) == (3, 2, 1)
    assert tally.precision == 2 / 3 and tally.recall == 2 / 3 and abs(tally.f1 - 2 / 3) < 1e-12
    assert tally.fa_per_month == 0.5
    assert tally.delays == [2, 5] and tally.median_delay("level_shift") == 5.0
    assert tally.kind_hit["dip"] == 0 and tally.kind_total["dip"] == 1


def test_injection_puts_one_anomaly_of_each_kind_apart_and_after_warm_up() -> None:
    clean = synthetic_series()[0]
    series = inject(clean, 7)
    assert sorted(a.kind for a in series.labels) == sorted(KINDS)
    spans = sorted((a.start, a.end) for a in series.labels)
    assert spans[0][0] >= 42
    assert all(b[0] > a[1] for a, b in itertools.pairwise(spans))
    assert series.values != clean.values and series.ts == clean.ts
    flat = next(a for a in series.labels if a.kind == "flatline")
    assert all(v == 0.0 for v in series.values[flat.start : flat.end + 1])


def test_baselines_flag_an_obvious_spike() -> None:
    values = [10.0 + (i % 3) for i in range(60)] + [60.0]
    s = Series("t", 86400.0, [i * 86400.0 for i in range(61)], values)
    for det in (WindowedGaussian(window=28), SeasonalNaiveZ(period=7, window=28)):
        scores = [det.update(t, v) for t, v in zip(s.ts, s.values, strict=True)]
        assert scores[-1] > 0.999 and max(scores[:-1]) < 0.999


def test_alarms_before_the_scored_window_are_not_counted() -> None:
    tally = Tally()
    labels = [Anomaly("spike", 120, 120)]
    # 30 falls in the documented ramp (not scored), 80 is a false alarm, 121 a detection
    score_series(tally, [30, 80, 121], labels, 3, 2.0, 1.0, scored_from=60)
    assert (tally.detected, tally.false_alarms) == (1, 1)


def test_injection_starts_after_the_scored_window() -> None:
    clean = synthetic_series()[0]
    ramp = Series(clean.name, clean.step_s, clean.ts, clean.values, scored_from=200)
    series = inject(ramp, 7)
    assert series.scored_from == 200 and min(a.start for a in series.labels) >= 200
    assert ramp.months < clean.months


def test_flatlines_count_their_silence_in_days_and_whether_still_silent() -> None:
    tally = Tally()
    labels = [Anomaly("flatline", 10, 12), Anomaly("flatline", 40, 42)]
    score_series(tally, [11, 44], labels, grace=7, months=1.0, points_per_day=1.0)
    assert tally.flatline_days == [2.0, 5.0] and tally.flatline_in_stretch == 1


def test_the_tuning_split_has_other_anomalies_than_the_reported_one() -> None:
    assert set(SPLITS) == {"eval", "tune"} and len(SPLITS["tune"]) == 4
    eval_seeds = {s for _, _, first in SPLITS["eval"] for s in range(first, first + 29)}
    tune_seeds = {s for _, _, first in SPLITS["tune"] for s in range(first, first + 29)}
    assert not eval_seeds & tune_seeds
    assert not {n for _, n, _ in SPLITS["eval"]} & {n for _, n, _ in SPLITS["tune"]}
    clean = synthetic_series(seed=SPLITS["tune"][0][1])[0]
    assert clean.values != synthetic_series(seed=SPLITS["eval"][0][1])[0].values


def test_false_alarms_in_the_wind_down_are_counted_apart_and_still_scored() -> None:
    tally = Tally()
    labels = [Anomaly("dip", 100, 102)]
    # 50: a false alarm before the wind-down; 101: the dip, detected; 150 and 160: false
    # alarms in it (from 140 on): still false alarms, also counted apart
    score_series(tally, [50, 101, 150, 160], labels, 3, 2.0, 1.0, wind_down_from=140)
    assert (tally.detected, tally.false_alarms, tally.wind_down_false_alarms) == (1, 3, 2)
    inj = inject(Series("t", 86400.0, [i * 86400.0 for i in range(400)], [5.0] * 400,
                        wind_down_from=300), 3)  # fmt: skip
    assert inj.wind_down_from == 300
