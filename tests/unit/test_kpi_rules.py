"""kpi_threshold, kpi_anomaly and the online detector: pure, injected time."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from streams.anomaly import AnomalyDetector, EwmaDetector
from streams.rules.kpi_point import KpiPoint, read_point
from streams.rules.model import parse_rule
from streams.rules.types import kpi_anomaly, kpi_threshold

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def point(value: float | None, at: datetime = T0, trust: float = 0.9,
          untrusted: bool = False) -> KpiPoint:  # fmt: skip
    return KpiPoint("win_rate", "team", "west", "rolling_7d", value, trust, untrusted, at)


def test_reader_is_tolerant_and_explains_refusals() -> None:
    p = read_point({"kpi": "x", "scope": {"kind": "global"}, "value": 3, "extra": [1],
                    "trust": 0.7, "computed_at": "2026-03-02T09:00:00Z"}, T0)  # fmt: skip
    assert isinstance(p, KpiPoint) and p.value == 3.0 and p.trust == 0.7 and p.scope == "global:all"
    assert read_point({"scope": {"kind": "team"}}, T0) == "missing_kpi"
    assert read_point({"kpi": "x"}, T0) == "missing_scope"
    assert read_point([1], T0) == "not_an_object"
    nan = read_point({"kpi": "x", "scope": {"kind": "g"}, "value": float("nan")}, T0)
    assert isinstance(nan, KpiPoint) and nan.value is None


def test_threshold_sustain_then_back_in_band() -> None:
    r = parse_rule({"id": "k", "type": "kpi_threshold", "kpi": "win_rate", "min": 0.2,
                    "sustain": "PT30M", "message": "m"})  # fmt: skip
    out = kpi_threshold.evaluate_kpi(r, point(0.1), {}, T0)  # type: ignore[arg-type]
    assert not out.holds and out.state is not None
    assert out.state["due"] == (T0 + timedelta(minutes=30)).timestamp()
    # still out 29 minutes later: not yet; at 30 minutes (timer re-check): fires
    later = kpi_threshold.evaluate_kpi(r, point(0.15, T0 + timedelta(minutes=29)), out.state,  # type: ignore[arg-type]
                                       T0 + timedelta(minutes=29))  # fmt: skip
    assert not later.holds and later.state is not None
    assert later.state["out_since"] == T0.timestamp()
    due = kpi_threshold.evaluate_kpi(r, point(0.15), later.state, T0 + timedelta(minutes=30))  # type: ignore[arg-type]
    assert due.holds
    back = kpi_threshold.evaluate_kpi(r, point(0.25), due.state or {}, T0 + timedelta(hours=1))  # type: ignore[arg-type]
    assert not back.holds and back.skip is None


def test_threshold_ignores_untrusted_unless_asked() -> None:
    r = parse_rule({"id": "k", "type": "kpi_threshold", "kpi": "win_rate", "max": 0.9,
                    "message": "m"})  # fmt: skip
    assert kpi_threshold.evaluate_kpi(r, point(1.0, untrusted=True), {}, T0).skip == "untrusted"  # type: ignore[arg-type]
    assert kpi_threshold.evaluate_kpi(r, point(1.0, trust=0.2), {}, T0).skip == "untrusted"  # type: ignore[arg-type]
    assert kpi_threshold.evaluate_kpi(r, point(None), {}, T0).skip == "no_value"  # type: ignore[arg-type]
    asked = parse_rule({"id": "k", "type": "kpi_threshold", "kpi": "win_rate", "max": 0.9,
                        "include_untrusted": True, "message": "m"})  # fmt: skip
    assert kpi_threshold.evaluate_kpi(asked, point(1.0, untrusted=True), {}, T0).holds  # type: ignore[arg-type]


def test_detector_warmup_never_scores() -> None:
    det = AnomalyDetector(warmup=10)
    scores = [det.update(i, v) for i, v in enumerate([1, 100, -50, 1e6, 3, 2, 1, 0, 5, 9])]
    assert scores == [0.0] * 10
    assert det.warm


def test_ewma_baseline_scores_match_the_normal_tail() -> None:
    rng = random.Random(42)
    det = EwmaDetector(half_life=200, warmup=50)
    for i in range(2000):
        det.update(float(i), rng.gauss(100.0, 5.0))
    assert abs(det.mean - 100.0) < 1.5
    assert abs(det.sd() - 5.0) < 1.0
    # a point 3 sd away scores about erf(3/sqrt 2) = 0.9973
    score = det.score(det.mean + 3 * det.sd())
    assert score == pytest.approx(math.erf(3 / math.sqrt(2)), abs=1e-9)
    assert det.score(det.mean) == 0.0


def test_ewma_baseline_false_alarm_rate_on_noise_is_near_the_tail() -> None:
    rng = random.Random(7)
    det = EwmaDetector(half_life=100, warmup=100)
    scores = [det.update(float(i), rng.gauss(0.0, 1.0)) for i in range(20000)]
    rate = sum(s >= 0.99 for s in scores[100:]) / len(scores[100:])
    assert 0.003 < rate < 0.03  # ~1 % for a normal series, allowing EWMA estimation noise


def test_ewma_baseline_direction_and_flat_series() -> None:
    down = EwmaDetector(warmup=5, direction="down")
    for i in range(20):
        down.update(i, 10.0)
    assert down.score(1000.0) == 0.0
    assert down.score(0.0) > 0.999  # the sd floor keeps a flat series finite
    assert EwmaDetector.from_dict(down.to_dict(), half_life=30, warmup=5,
                                     direction="down").mean == 10.0  # fmt: skip
    with pytest.raises(ValueError, match="direction"):
        EwmaDetector(direction="sideways")


def test_anomaly_rule_warmup_fire_resolve_cooldown() -> None:
    r = parse_rule({"id": "a", "type": "kpi_anomaly", "kpi": "win_rate", "warmup": 5,
                    "threshold": 0.999, "cooldown": "PT1H", "cooldown_points": 0,
                    "message": "m"})  # fmt: skip
    state: dict[str, object] = {}
    t = T0
    for i, v in enumerate([10, 11, 9, 10, 10, 11, 9, 10]):
        t = T0 + timedelta(minutes=i)
        out = kpi_anomaly.evaluate_kpi(r, point(v, t), state, t)  # type: ignore[arg-type]
        assert not out.holds
        state = dict(out.state or {})
    t += timedelta(minutes=1)
    spike = kpi_anomaly.evaluate_kpi(r, point(100.0, t), state, t)  # type: ignore[arg-type]
    assert spike.holds and spike.evidence["score"] >= 0.999
    assert spike.evidence["component"] == "spike" and spike.evidence["deviation"] > 80
    low, high = spike.evidence["band"]
    assert low < spike.evidence["expected"] < high < 100.0
    # the same snapshot again (replay, timer re-check) neither learns nor changes the state
    assert kpi_anomaly.evaluate_kpi(r, point(100.0, t), spike.state or {}, t).state == spike.state  # type: ignore[arg-type]
    t += timedelta(minutes=1)
    calm = kpi_anomaly.evaluate_kpi(r, point(10.0, t), spike.state or {}, t)  # type: ignore[arg-type]
    assert not calm.holds and calm.state is not None
    assert calm.state["quiet_until"] == t.timestamp() + 3600
    t += timedelta(minutes=1)
    again = kpi_anomaly.evaluate_kpi(r, point(500.0, t), calm.state, t)  # type: ignore[arg-type]
    assert not again.holds and "cooldown_until" in again.evidence


def test_anomaly_rule_reads_the_previous_detector_state() -> None:
    r = parse_rule({"id": "a", "type": "kpi_anomaly", "kpi": "win_rate", "warmup": 5,
                    "message": "m"})  # fmt: skip
    old = {"det": {"n": 40, "m": 10.0, "v": 1.0, "t": T0.timestamp()}, "seen": T0.timestamp(),
           "holds": False}  # fmt: skip
    t = T0 + timedelta(minutes=1)
    calm = kpi_anomaly.evaluate_kpi(r, point(10.5, t), old, t)  # type: ignore[arg-type]
    assert not calm.holds and calm.evidence["expected"] == 10.0
    t += timedelta(minutes=1)
    spike = kpi_anomaly.evaluate_kpi(r, point(40.0, t), calm.state or {}, t)  # type: ignore[arg-type]
    assert spike.holds and spike.evidence["component"] == "spike"


SHIFT_CALM = [20, 22, 28, 17, 22, 16, 19, 21, 20, 18, 23, 10, 18, 27, 14, 20, 23, 20, 28, 17,
              23, 25, 20, 18, 22, 18, 22, 17, 11, 14]  # fmt: skip
SHIFT_UP = [30, 46, 29, 53, 40, 31, 51, 34, 36, 48, 45, 37, 40, 36]


def test_anomaly_rule_level_shift_is_one_episode() -> None:
    r = parse_rule({"id": "a", "type": "kpi_anomaly", "kpi": "win_rate", "warmup": 10,
                    "message": "m"})  # fmt: skip
    state: dict[str, object] = {}
    changes = []
    for i, v in enumerate(SHIFT_CALM + SHIFT_UP):
        t = T0 + timedelta(minutes=i)
        out = kpi_anomaly.evaluate_kpi(r, point(float(v), t), state, t)  # type: ignore[arg-type]
        if out.holds != bool(state.get("holds")):
            changes.append((i, out.holds, out.evidence))
        state = dict(out.state or {})
    assert [(i, holds) for i, holds, _ in changes] == [(31, True), (35, False)]
    fired = changes[0][2]
    assert fired["expected"] == pytest.approx(20.0, abs=2.0) and fired["count_model"]
    assert changes[1][2]["expected"] > 30.0  # the new level was adopted
