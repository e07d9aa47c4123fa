"""feed_silence: working-time gaps, the learnt rhythm, the rule with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.anomaly.silence import (
    TRUST_AT_DEADLINE,
    Calendar,
    FeedRhythm,
    feed_trust,
    working_seconds,
)
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import FeedSilenceRule, parse_rule
from streams.rules.types import feed_silence

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OFFICE = Calendar("UTC", (1, 2, 3, 4, 5), "09:00", "18:00")


def point(at: datetime, value: float = 3.0) -> KpiPoint:
    return KpiPoint("new_deals", "global", "all", "day", value, 0.9, False, at)


def rule(**extra: Any) -> FeedSilenceRule:
    data = {"id": "feed", "type": "feed_silence", "kpi": "new_deals", "warmup": 4,
            "min_gap": "PT5M", "message": "m", **extra}  # fmt: skip
    parsed = parse_rule(data)
    assert isinstance(parsed, FeedSilenceRule)
    return parsed


def test_working_seconds_skip_nights_and_weekends() -> None:
    friday_17 = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    monday_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    assert working_seconds(friday_17, monday_10, OFFICE) == 2 * 3600
    assert working_seconds(monday_10, friday_17, OFFICE) == 0.0
    paris = Calendar("Europe/Paris", (1, 2, 3, 4, 5), "09:00", "18:00")
    # 08:00 UTC is 09:00 in Paris (winter): the day is open in Paris, not in UTC
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert working_seconds(start, start + timedelta(hours=1), paris) == 3600
    assert working_seconds(start, start + timedelta(hours=1), OFFICE) == 0
    # a long silence is counted in bounded work: whole weeks at once
    year = working_seconds(MONDAY_9, MONDAY_9 + timedelta(days=7 * 60), OFFICE)
    assert year == pytest.approx(60 * 5 * 9 * 3600, rel=0.01)


def test_rhythm_learns_the_usual_gap_and_ignores_outages() -> None:
    rhythm = FeedRhythm()
    rhythm.observe(0.0, None, None)
    for i in range(1, 30):
        rhythm.observe(i * 600.0, 600.0, None)
    assert rhythm.usual_gap() == pytest.approx(600.0, rel=1e-6)
    allowed = rhythm.allowed(3.0, 60.0, None)
    assert allowed == pytest.approx(1800.0, rel=1e-6)
    rhythm.observe(1e6, 50_000.0, allowed)  # an outage: not part of the rhythm
    assert rhythm.usual_gap() == pytest.approx(600.0, rel=1e-6) and rhythm.last == 1e6
    assert rhythm.allowed(3.0, 7200.0, None) == 7200.0
    assert rhythm.allowed(3.0, 60.0, 900.0) == 900.0
    assert FeedRhythm.from_dict(rhythm.to_dict()) == rhythm


def test_trust_drops_below_the_default_floor_at_the_deadline() -> None:
    assert feed_trust(100.0, 600.0, 1800.0) == 1.0
    assert feed_trust(1200.0, 600.0, 1800.0) == pytest.approx(0.7)
    assert feed_trust(1800.0, 600.0, 1800.0) == pytest.approx(TRUST_AT_DEADLINE)
    assert TRUST_AT_DEADLINE < 0.5
    assert feed_trust(18000.0, 600.0, 1800.0) == pytest.approx(TRUST_AT_DEADLINE / 10)


def test_rule_fires_after_the_allowed_working_silence_and_resolves_on_arrival() -> None:
    r = rule()
    state: dict[str, Any] = {}
    at = MONDAY_9
    for i in range(6):  # a snapshot every 10 minutes on Monday morning
        at = MONDAY_9 + timedelta(minutes=10 * i)
        out = feed_silence.evaluate_kpi(r, point(at), state, at)
        assert not out.holds
        state = dict(out.state or {})
    assert state["due"] == pytest.approx((at + timedelta(minutes=30)).timestamp())
    # the timer re-checks with the last point: not yet, then at the deadline
    early = feed_silence.evaluate_kpi(r, point(at), state, at + timedelta(minutes=29))
    assert not early.holds and early.state == state
    due = feed_silence.evaluate_kpi(r, point(at), state, at + timedelta(minutes=30))
    assert due.holds
    assert due.evidence["kpi_trust"] < 0.5 and due.evidence["kpi_trust_before"] == 0.9
    assert due.evidence["silent_working_s"] == pytest.approx(1800.0)
    back = feed_silence.evaluate_kpi(r, point(at + timedelta(hours=2)), due.state or {},
                                     at + timedelta(hours=2))  # fmt: skip
    assert not back.holds and back.state is not None
    assert back.state["rh"] == state["rh"] | {"t": (at + timedelta(hours=2)).timestamp()}


def test_nights_and_weekends_do_not_count() -> None:
    r = rule()
    state: dict[str, Any] = {}
    friday = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    at = friday
    for i in range(6):
        at = friday + timedelta(minutes=10 * i)  # up to 17:50
        state = dict(feed_silence.evaluate_kpi(r, point(at), state, at).state or {})
    # 10 minutes of Friday left, then 20 on Monday morning
    assert state["due"] == pytest.approx(datetime(2026, 3, 9, 9, 20, tzinfo=UTC).timestamp())
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert not feed_silence.evaluate_kpi(r, point(at), state, saturday).holds


def test_no_firing_before_the_rhythm_is_learnt() -> None:
    r = rule(warmup=10)
    state: dict[str, Any] = {}
    for i in range(3):
        at = MONDAY_9 + timedelta(minutes=i)
        state = dict(feed_silence.evaluate_kpi(r, point(at), state, at).state or {})
    assert state["due"] is None
    later = MONDAY_9 + timedelta(hours=5)
    assert not feed_silence.evaluate_kpi(r, point(MONDAY_9), state, later).holds


def test_rule_model_checks_its_calendar() -> None:
    with pytest.raises(ValueError, match="timezone"):
        rule(business_time={"timezone": "Nowhere/City"})
    with pytest.raises(ValueError):
        rule(factor=0.5)
