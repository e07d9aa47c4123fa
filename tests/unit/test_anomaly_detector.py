"""The KPI anomaly detector, one component at a time; time is the ``ts`` each point carries."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.anomaly import AnomalyDetector
from streams.anomaly import detector as detector_module
from streams.anomaly.calibration import (
    KNEE,
    normal_surprise,
    score_of,
    surprise_of,
    z_for_surprise,
)
from streams.anomaly.episode import ESCALATE, Episode, family
from streams.anomaly.episode import step as step_episode
from streams.anomaly.learn import AR_MAX
from streams.anomaly.season import auto_season, civil_from_days, month_end, slot_of
from tests.unit.anomaly_fixtures import DAY, HOUR, MONDAY, feed, poisson


# ---------------------------------------------------------------- calibration
def test_score_is_one_minus_p_up_to_the_knee_then_never_saturates() -> None:
    assert score_of(2.0) == pytest.approx(0.99)
    assert score_of(3.0) == pytest.approx(0.999)
    assert score_of(KNEE) == pytest.approx(1 - 10**-KNEE)
    scores = [score_of(s) for s in (5.0, 10.0, 50.0, 100.0)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert all(s < 1.0 for s in scores)
    assert score_of(1e9) < 1.0 and score_of(1e9) >= scores[-1]
    assert score_of(0.0) == 0.0 and score_of(float("nan")) == 0.0
    for score in (0.5, 0.99, 0.999, 0.99999, 0.9999999):
        assert score_of(surprise_of(score)) == pytest.approx(score, abs=1e-12)


def test_normal_surprise_is_the_two_sided_tail_and_stays_finite() -> None:
    assert normal_surprise(1.959964) == pytest.approx(-math.log10(0.05), abs=1e-4)
    assert normal_surprise(3.0) == pytest.approx(-math.log10(math.erfc(3 / math.sqrt(2))))
    zs = [5.0, 7.99, 8.0, 20.0, 1e3, 1e300]
    values = [normal_surprise(z) for z in zs]
    assert values == sorted(values) and all(math.isfinite(v) for v in values)
    assert z_for_surprise(2.0) == pytest.approx(2.5758, abs=1e-3)


def test_a_bigger_spike_ranks_above_a_moderate_one() -> None:
    rng = random.Random(3)
    history = [100.0 + rng.gauss(0.0, 5.0) for _ in range(200)]
    scores = []
    for sds in (4, 6, 10, 30):
        det = AnomalyDetector(season="none", count="no")
        feed(det, history)
        scores.append(det.update(MONDAY + 200 * DAY, det.expected + sds * det.sd_last))
    assert scores == sorted(scores) and len(set(scores)) == 4 and scores[-1] < 1.0


def test_false_alarms_on_gaussian_noise_stay_near_the_threshold() -> None:
    rng = random.Random(11)
    det = AnomalyDetector(season="none", count="no", threshold=0.999)
    onsets = feed(det, [rng.gauss(50.0, 4.0) for _ in range(20_000)])
    assert len(onsets) / 20_000 < 0.004  # three components at p = 0.1 % each


# ---------------------------------------------------------------- seasonal profile
def test_calendar_slots_and_month_ends() -> None:
    assert slot_of(7, MONDAY) == 0 and slot_of(7, MONDAY + 6 * DAY) == 6
    assert slot_of(24, MONDAY + 13 * HOUR) == 13
    assert slot_of(168, MONDAY + DAY + 10 * HOUR) == 34
    assert civil_from_days(19723) == (2024, 1, 1)
    assert month_end(MONDAY + 29 * DAY) and not month_end(MONDAY + 27 * DAY)
    assert month_end(MONDAY + 58 * DAY)  # 2024-02-28: three days before 1 March (leap year)
    assert auto_season(DAY) == "day_of_week" and auto_season(HOUR) == "hour_of_week"
    assert auto_season(60.0) == "none" and auto_season(7 * DAY) == "none"


def test_weekly_profile_is_learnt_so_weekends_are_not_dips() -> None:
    rng = random.Random(5)
    values = [poisson(rng, 2.0 if (i % 7) >= 5 else 20.0) for i in range(20 * 7)]
    det = AnomalyDetector(threshold=0.9999)
    assert feed(det, values) == []
    assert det.period == 7 and det.is_count
    det.update(MONDAY + 140 * DAY, 20.0)  # a Monday
    assert det.expected == pytest.approx(20.0, abs=3.0)
    det.update(MONDAY + 145 * DAY, 2.0)  # a Saturday
    assert det.expected == pytest.approx(2.0, abs=1.5)
    # a seasonality break: the weekend suddenly as busy as a weekday
    saturday = MONDAY + 152 * DAY
    det.update(saturday, 20.0)
    assert det.onset and det.component == "spike"


def test_hour_of_week_profile_learns_working_hours() -> None:
    rng = random.Random(8)
    det = AnomalyDetector(threshold=0.9999)
    values = []
    for i in range(6 * 168):
        day, hour = (i // 24) % 7, i % 24
        values.append(poisson(rng, 6.0 if day < 5 and 9 <= hour < 18 else 0.1))
    onsets = feed(det, values, step=HOUR)
    assert det.period == 168
    assert [o for o in onsets if o >= 2 * 168] == []  # learnt within two weeks
    det.update(MONDAY + 6 * 168 * HOUR + 3 * HOUR, 0.0)  # Monday 03:00
    assert det.expected < 1.0
    det.update(MONDAY + 6 * 168 * HOUR + 11 * HOUR, 6.0)  # Monday 11:00
    assert det.expected == pytest.approx(6.0, abs=2.0)


# ---------------------------------------------------------------- change point
def test_level_shift_inside_the_normal_range_is_found_by_the_cusum() -> None:
    rng = random.Random(21)
    det = AnomalyDetector(season="none", count="no", threshold=0.9999)
    calm = [100.0 + rng.gauss(0.0, 5.0) for _ in range(300)]
    shifted = [110.0 + rng.gauss(0.0, 5.0) for _ in range(60)]  # +2 sd: no single spike
    onsets = feed(det, calm + shifted)
    assert [o for o in onsets if o < 300] == []
    after = [o for o in onsets if o >= 300]
    assert len(after) == 1 and after[0] < 315
    assert det.episode_component == "level_shift_up" or not det.active
    assert det.expected == pytest.approx(110.0, abs=3.0)  # the new level was adopted


def test_level_shift_down_component_and_evidence() -> None:
    det = AnomalyDetector(season="none", count="no", cooldown=0)
    rng = random.Random(4)
    feed(det, [50.0 + rng.gauss(0.0, 2.0) for _ in range(200)])
    components = []
    for i in range(10):
        det.update(MONDAY + (200 + i) * DAY, 46.0 + rng.gauss(0.0, 1.0))
        if det.onset:
            components.append(det.component)
    assert components == ["level_shift_down"]
    evidence = det.evidence()
    assert set(evidence) >= {"expected", "band", "deviation", "z", "surprise", "component"}


# ---------------------------------------------------------------- lag-1 autocorrelation
def ar1(rng: random.Random, n: int, rho: float, sd: float = 1.0) -> list[float]:
    out, e = [], 0.0
    for _ in range(n):
        e = rho * e + rng.gauss(0.0, sd)
        out.append(100.0 + e)
    return out


def test_lag1_autocorrelation_is_learnt_and_bounded() -> None:
    rng = random.Random(5)
    for rho, low, high in ((0.7, 0.55, 0.85), (0.0, 0.0, 0.3), (0.999, 0.85, AR_MAX)):
        det = AnomalyDetector(season="none", count="no")
        feed(det, ar1(rng, 4000, rho))
        assert low <= det.rho <= high, (rho, det.rho)
    det = AnomalyDetector(season="none", count="no")
    feed(det, [100.0 + (3.0 if i % 2 else -3.0) + rng.gauss(0.0, 1.0) for i in range(500)])
    assert det.rho == 0.0  # negative autocorrelation is never "corrected"


def test_a_point_is_scored_against_the_whitened_prediction() -> None:
    rng = random.Random(8)
    det = AnomalyDetector(season="none", count="no", threshold=0.9999)
    feed(det, ar1(rng, 3000, 0.8))
    level = det.level
    det.update(MONDAY + 3000 * DAY, level + 3.0 * det.scale)  # a high residual ...
    det.update(MONDAY + 3001 * DAY, level + 2.0 * det.scale)  # ... is carried forward
    # expected = seasonal baseline + rho x the last (clipped) residual; its sd is the
    # innovations' sd(1 - rho^2)^0.5: the second point is no surprise
    assert det.expected > level + 1.5 * det.scale
    assert det.sd_model == pytest.approx(det.scale * math.sqrt(1.0 - det.rho**2), rel=0.05)
    assert abs(det.z_last) < 1.5 and not det.onset


def test_autocorrelated_noise_does_not_alarm_like_level_shifts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = ar1(random.Random(13), 6000, 0.7)
    whitened = feed(AnomalyDetector(season="none", count="no"), values)
    monkeypatch.setattr(detector_module, "learn_lag", lambda det, r, sd: None)  # rho stays 0
    plain = feed(AnomalyDetector(season="none", count="no"), values)
    # whitened: about the calibrated rate (p = 0.5 %); plain: the CUSUM mistakes the
    # persistence of the noise for shifts
    assert len(whitened) < 0.01 * len(values) and len(whitened) * 2 < len(plain)


def test_the_lag_state_survives_a_round_trip_and_old_states_load() -> None:
    rng = random.Random(2)
    det = AnomalyDetector(season="none", count="no")
    feed(det, ar1(rng, 500, 0.6))
    state = json.loads(json.dumps(det.to_dict()))
    clone = AnomalyDetector.from_dict(state, **det.config())
    assert clone.rho == det.rho > 0.3 and clone.r_prev == det.r_prev
    assert clone.update(MONDAY + 500 * DAY, 104.0) == det.update(MONDAY + 500 * DAY, 104.0)
    del state["ar"]  # written before the lag-1 correction existed
    old = AnomalyDetector.from_dict(state, **det.config())
    assert old.rho == 0.0 and old.n == det.n - 1


# ---------------------------------------------------------------- counts and flatline
def test_small_counts_do_not_alarm_on_ordinary_poisson_noise() -> None:
    rng = random.Random(9)
    det = AnomalyDetector(season="none", threshold=0.9999)
    onsets = feed(det, [poisson(rng, 1.5) for _ in range(3000)], step=HOUR)
    assert det.is_count
    assert len(onsets) <= 3
    assert det.update(MONDAY + 3000 * HOUR, 4.0) < 0.99  # 4 deals where 1.5 are usual
    assert det.update(MONDAY + 3001 * HOUR, 15.0) > 0.999


def test_a_silent_feed_flatlines_within_one_expected_period() -> None:
    rng = random.Random(13)
    det = AnomalyDetector(season="none")
    feed(det, [poisson(rng, 5.0) for _ in range(200)])
    first = None
    for i in range(5):
        det.update(MONDAY + (200 + i) * DAY, 0.0)
        if det.onset:
            first = i
            break
    assert first is not None and first <= 1
    assert det.component in ("flatline", "dip")


def test_a_stuck_value_flatlines() -> None:
    rng = random.Random(2)
    det = AnomalyDetector(season="none")
    feed(det, [round(1e6 + rng.gauss(0.0, 2e4), 2) for _ in range(200)])
    stuck = det.last_value or 0.0
    onsets = feed(det, [stuck] * 6, start=MONDAY + 200 * DAY)
    assert onsets and det.component == "flatline"


def test_zero_nights_never_flatline() -> None:
    det = AnomalyDetector(season="hour_of_day")
    rng = random.Random(1)
    values = [poisson(rng, 4.0) if 9 <= i % 24 < 18 else 0.0 for i in range(24 * 60)]
    assert feed(det, values, step=HOUR) == []


# ---------------------------------------------------------------- hysteresis and cooldown
def test_one_burst_is_one_episode_and_cooldown_holds_back_the_next() -> None:
    rng = random.Random(6)
    det = AnomalyDetector(season="none", count="no", cooldown=5, threshold=0.9999)
    assert feed(det, [20.0 + rng.gauss(0.0, 1.0) for _ in range(100)]) == []
    t = MONDAY + 100 * DAY

    def step(value: float) -> None:
        nonlocal t
        det.update(t, value)
        t += DAY

    onsets = 0
    for value in (60.0, 70.0, 65.0):  # one burst
        step(value)
        onsets += det.onset
    assert onsets == 1 and det.active
    calm = iter([20.3, 19.6, 20.5, 19.5, 19.8, 20.1, 19.9, 20.2, 19.7, 20.4] * 3)
    while det.active:
        step(next(calm))
    step(next(calm))
    step(80.0)  # inside the cooldown: held back, no new episode
    assert det.suppressed and not det.onset and not det.active
    for _ in range(5):
        step(next(calm))
    step(80.0)  # after it: a new episode
    assert det.onset and det.active


def test_hysteresis_keeps_an_episode_open_until_clear_calm_points() -> None:
    det = AnomalyDetector(season="none", count="no", clear=3)
    rng = random.Random(7)
    feed(det, [10.0 + rng.gauss(0.0, 0.5) for _ in range(100)])
    det.update(MONDAY + 100 * DAY, 30.0)
    assert det.active and det.onset
    for i, value in enumerate((10.1, 9.9)):
        det.update(MONDAY + (101 + i) * DAY, value)
        assert det.active
    det.update(MONDAY + 103 * DAY, 10.05)
    assert not det.active


def test_settings_are_checked_at_construction() -> None:
    for bad in ({"season": "lunar"}, {"count": "maybe"}, {"threshold": 1.0},
                {"resolve": 0.9999}, {"shift_k": 0.0}, {"clear": 0}, {"warmup": 1}):  # fmt: skip
        with pytest.raises(ValueError):
            AnomalyDetector(**bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties
values_st = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=0, max_value=50).map(float),
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(values_st, min_size=1, max_size=120),
    step=st.sampled_from([60.0, HOUR, DAY]),
    season=st.sampled_from(["auto", "none", "hour_of_week"]),
)
def test_any_input_scores_in_0_1_without_error(
    values: list[float], step: float, season: str
) -> None:
    det = AnomalyDetector(warmup=3, season=season)
    for i, v in enumerate(values):
        score = det.update(MONDAY + i * step, v)
        assert 0.0 <= score < 1.0
        assert math.isfinite(det.expected) and math.isfinite(det.level)
    clone = AnomalyDetector.from_dict(json.loads(json.dumps(det.to_dict())), **det.config())
    assert clone.update(MONDAY + len(values) * step, 5.0) == det.update(
        MONDAY + len(values) * step, 5.0
    )


def test_timestamps_without_a_calendar_slot_do_not_raise() -> None:
    det = AnomalyDetector(warmup=3)
    for i, ts in enumerate([MONDAY, float("nan"), float("inf"), -1e300, MONDAY + DAY, 1e200]):
        assert 0.0 <= det.update(ts, 10.0 + i % 2) < 1.0
    assert det.last_ts == MONDAY + DAY


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), points=st.integers(2_000, 6_000))
def test_state_size_is_bounded_whatever_the_length(seed: int, points: int) -> None:
    rng = random.Random(seed)
    det = AnomalyDetector()
    for i in range(points):
        det.update(MONDAY + i * HOUR, poisson(rng, 3.0))
    state = det.to_dict()
    assert len(state["pf"]) <= 168 and len(state["ps"]) <= 168 and len(state["st"]) <= 12
    assert len(json.dumps(state)) < 12_000


# ---------------------------------------------------------------- episodes (pure)
def test_episode_opens_holds_resolves_and_cools_down() -> None:
    state = Episode(False, 0, 0, None)
    state = step_episode(state, 3.0, "spike", 2.3, 1.3, 2, 2)
    assert state.onset and state.active and state.component == "spike"
    state = step_episode(state, 1.0, None, 2.3, 1.3, 2, 2)
    assert state.active and not state.onset  # one calm point of the two needed
    state = step_episode(state, 1.0, None, 2.3, 1.3, 2, 2)
    assert not state.active and state.cool == 2
    held = step_episode(state, 5.0, "level_shift_up", 2.3, 1.3, 2, 2)  # same family: rise
    assert held.suppressed and not held.active and held.cool == 1
    other = step_episode(state, 5.0, "flatline", 2.3, 1.3, 2, 2)  # another family
    assert other.onset and other.component == "flatline"


def test_a_far_bigger_anomaly_is_not_held_back_by_the_cooldown() -> None:
    small = step_episode(Episode(False, 0, 0, None), 2.5, "spike", 2.3, 1.3, 10, 1)
    small = step_episode(small, 3.0, "spike", 2.3, 1.3, 10, 1)  # its peak: 3.0
    closed = step_episode(small, 0.1, None, 2.3, 1.3, 10, 1)
    assert not closed.active and closed.cool == 10 and closed.peak == 3.0
    held = step_episode(closed, 3.0 + ESCALATE - 0.01, "spike", 2.3, 1.3, 10, 1)
    assert held.suppressed and not held.onset and held.cool == 9 and held.peak == 3.0
    news = step_episode(closed, 3.0 + ESCALATE, "spike", 2.3, 1.3, 10, 1)
    assert news.onset and news.active and not news.suppressed and news.peak == 3.0 + ESCALATE
    inside = step_episode(news, 3.0 + 3 * ESCALATE, "level_shift_up", 2.3, 1.3, 10, 1)
    assert inside.active and not inside.onset  # while open, a rise stays one episode


def test_another_kind_of_anomaly_preempts_an_open_episode() -> None:
    surge = step_episode(Episode(False, 0, 0, None), 4.0, "level_shift_up", 2.3, 1.3, 10, 1)
    same = step_episode(surge, 6.0, "day_spike", 2.3, 1.3, 10, 1)
    assert same.active and not same.onset  # a rise inside a rise: the same episode
    silent = step_episode(surge, 6.0, "flatline", 2.3, 1.3, 10, 1)
    assert silent.onset and silent.component == "flatline"
    assert [family(c) for c in ("dip", "day_level_shift_down", "day_flatline", None)] == [
        "down", "down", "flat", ""
    ]  # fmt: skip


# ---------------------------------------------------------------- day totals of hourly KPIs
def test_a_small_hourly_shift_is_found_on_the_day_totals() -> None:
    rng = random.Random(16)

    def hours(days: int, busy: float) -> list[float]:
        return [poisson(rng, busy if (i // 24) % 7 < 5 and 9 <= i % 24 < 18 else 0.0)
                for i in range(24 * days)]  # fmt: skip

    det = AnomalyDetector()
    calm = feed(det, hours(70, 1.0), step=HOUR)
    assert [o for o in calm if o >= 28 * 24] == []  # four weeks to learn, then quiet
    assert det.day is not None and det.day.period == 7
    assert det.flatline and not det.day.flatline  # silence is watched hour by hour
    first: list[dict[str, Any]] = []
    fired = []  # 9 deals a working day -> 2.7: under 1.5 sd an hour, 4 sd a day
    for i, value in enumerate(hours(7, 0.3)):
        det.update(MONDAY + 70 * DAY + i * HOUR, value)
        if det.onset:
            fired.append(det.component)
            first.append(det.evidence())
    assert fired and fired[0] in ("day_dip", "day_level_shift_down")
    evidence = first[0]
    low, high = evidence["day_band"]  # the day total that fired, against its own band
    assert (
        evidence["day_value"] < evidence["day_expected"] and low < evidence["day_expected"] < high
    )
    clone = AnomalyDetector.from_dict(json.loads(json.dumps(det.to_dict())), **det.config())
    assert clone.day is not None and clone.day.to_dict() == det.day.to_dict()
