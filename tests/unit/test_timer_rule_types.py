"""inactivity and overdue: pure evaluation with an injected clock (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.rules.types import inactivity, overdue
from tests.unit.alerting_fixtures import T0, change, rule


def test_inactivity_fires_only_after_the_idle_time() -> None:
    r = rule(type="inactivity", after="P14D", activity_fields=["stage"])
    created = change(None, {"stage": "Proposal"})
    out = r.evaluate(created, {})
    assert not out.holds
    assert out.state is not None and out.state["due"] == (T0 + timedelta(days=14)).timestamp()
    # a non-activity field change 13 days later neither fires nor restarts the clock
    later = change({"stage": "Proposal"}, {"amount": 5}, at=T0 + timedelta(days=13))
    out2 = r.evaluate(later, out.state)
    assert not out2.holds and out2.state == out.state
    # the timer re-judges the record at the deadline
    at_due = change({"stage": "Proposal"}, {}, at=T0 + timedelta(days=14))
    at_due = type(at_due)(event=at_due.event, before=at_due.before, after=at_due.after,
                          changed=frozenset(), now=T0 + timedelta(days=14), timer=True)  # fmt: skip
    out3 = r.evaluate(at_due, out.state)
    assert out3.holds
    assert out3.evidence["idle_days"] == 14.0


def test_inactivity_activity_restarts_the_clock_and_resolves() -> None:
    r = rule(type="inactivity", after="PT1H", activity_fields=["stage"])
    state = {"last": T0.timestamp(), "due": (T0 + timedelta(hours=1)).timestamp()}
    moved = change({"stage": "Proposal"}, {"stage": "Negotiation"},
                   at=T0 + timedelta(hours=2), now=T0 + timedelta(hours=2))  # fmt: skip
    out = r.evaluate(moved, state)
    assert not out.holds
    assert out.state is not None
    assert out.state["due"] == (T0 + timedelta(hours=3)).timestamp()


def test_inactivity_anchor_created_is_disarmed_by_first_contact() -> None:
    r = rule(type="inactivity", after="PT1H", anchor="created", activity_fields=["contacted_at"])
    created = change(None, {"status": "new"})
    out = r.evaluate(created, {})
    assert out.state is not None
    contacted = change({"status": "new"}, {"contacted_at": "x"}, at=T0 + timedelta(minutes=30))
    out2 = r.evaluate(contacted, out.state)
    assert not out2.holds and out2.state == {"done": True}
    much_later = change({"status": "new"}, {"status": "open"}, now=T0 + timedelta(days=3))
    assert not r.evaluate(much_later, out2.state).holds


def test_inactivity_condition_off_disarms() -> None:
    r = rule(type="inactivity", after="PT1H", condition="deal.stage != 'Won'")
    won = change({"stage": "Proposal"}, {"stage": "Won"}, now=T0 + timedelta(days=2))
    out = r.evaluate(won, {"last": T0.timestamp(), "due": T0.timestamp() + 3600})
    assert not out.holds and out.state == {}


def test_inactivity_in_business_time_skips_the_weekend() -> None:
    friday_5pm = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)
    r = rule(type="inactivity", after="PT2H",
             business_time={"timezone": "UTC", "start": "09:00", "end": "18:00"})  # fmt: skip
    out = r.evaluate(change(None, {"stage": "Proposal"}, at=friday_5pm), {})
    assert out.state is not None
    # 1 h left on Friday, 1 h on Monday from 09:00
    assert out.state["due"] == datetime(2026, 3, 9, 10, 0, tzinfo=UTC).timestamp()


def test_overdue_fires_after_end_of_day_in_owner_timezone() -> None:
    r = rule(type="overdue", field="close_date", condition="deal.stage != 'Won'")
    c = change(None, {"stage": "Proposal", "close_date": "2026-03-02"}, tz="America/New_York",
               now=datetime(2026, 3, 3, 4, 59, tzinfo=UTC))  # fmt: skip
    out = r.evaluate(c, {})
    assert not out.holds  # 23:59 in New York
    assert out.state == {"due": datetime(2026, 3, 3, 5, 0, tzinfo=UTC).timestamp()}
    c2 = change(None, {"stage": "Proposal", "close_date": "2026-03-02"}, tz="America/New_York",
                now=datetime(2026, 3, 3, 5, 0, tzinfo=UTC))  # fmt: skip
    assert r.evaluate(c2, {}).holds


def test_overdue_missing_or_bad_date_is_a_counted_skip_not_an_error() -> None:
    r = rule(type="overdue", field="close_date")
    missing = r.evaluate(change(None, {"stage": "Proposal"}), {})
    assert not missing.holds and missing.skip == "missing_field"
    bad = r.evaluate(change(None, {"close_date": "next tuesday"}), {})
    assert not bad.holds and bad.skip == "bad_value"


def test_overdue_grace_and_datetime_values() -> None:
    r = rule(type="overdue", field="due_at", grace="PT30M")
    c = change(None, {"due_at": "2026-03-02T10:00:00+00:00"},
               now=T0 + timedelta(hours=1, minutes=29))  # fmt: skip
    assert not r.evaluate(c, {}).holds
    c2 = change(None, {"due_at": "2026-03-02T10:00:00Z"}, now=T0 + timedelta(hours=1, minutes=30))
    out = r.evaluate(c2, {})
    assert out.holds and out.evidence["late_s"] == 0.0


def test_direct_module_functions_match_registry() -> None:
    r = rule(type="overdue", field="close_date")
    c = change(None, {"close_date": "2026-03-01"}, now=datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    assert overdue.evaluate(r.rule, c, {}, None) == r.evaluate(c, {})  # type: ignore[arg-type]
    ri = rule(type="inactivity", after="PT1S")
    ci = change(None, {"a": 1})
    assert inactivity.evaluate(ri.rule, ci, {}, None) == ri.evaluate(ci, {})  # type: ignore[arg-type]
