"""frequency and transition: pure evaluation, and the closed registry."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest
from pydantic import ValidationError

from streams.rules.model import Rule, parse_rule
from streams.rules.registry import REGISTRY
from tests.unit.alerting_fixtures import T0, change, rule


def test_registry_and_union_list_the_same_types() -> None:
    union = typing.get_args(typing.get_args(Rule)[0])
    names = {typing.get_args(m.model_fields["type"].annotation)[0] for m in union}
    assert names == set(REGISTRY)
    assert {"inactivity", "overdue", "frequency", "kpi_threshold", "kpi_anomaly"} <= names


def test_kpi_threshold_needs_a_band() -> None:
    with pytest.raises(ValidationError, match="needs 'min' or 'max'"):
        parse_rule({"id": "k", "type": "kpi_threshold", "kpi": "win_rate", "message": "m"})


def test_frequency_counts_within_the_sliding_window() -> None:
    r = rule(type="frequency", count=3, window="PT1H", fields=["stage"])
    state: dict[str, object] = {}
    fired = []
    for minutes in (0, 30, 70, 80):  # 0 leaves the window before the 3rd in-window change
        out = r.evaluate(change({"stage": "a"}, {"stage": f"s{minutes}"},
                                at=T0 + timedelta(minutes=minutes)), state)  # fmt: skip
        state = dict(out.state or state)
        fired.append(out.holds)
    assert fired == [False, False, False, True]
    assert state == {"ts": []}  # counting restarts after a firing


def test_frequency_ignores_other_fields_and_guard() -> None:
    r = rule(type="frequency", count=2, window="PT1H", condition="deal.stage == 'Lost'")
    out = r.evaluate(change({"stage": "a"}, {"stage": "Won"}), {})
    assert not out.holds and out.state is None


@pytest.mark.parametrize(
    ("params", "old", "new", "fires"),
    [
        ({"change": "increased", "pct": 50}, 100, 151, True),
        ({"change": "increased", "pct": 50}, 100, 150, False),
        ({"change": "decreased", "abs": 10}, 100, 89, True),
        ({"change": "decreased", "abs": 10}, 100, 111, False),
        ({"change": "changed_by", "pct": 20}, 100, 75, True),
        ({"change": "changed"}, "a", "b", True),
    ],
)
def test_transition_numeric_movements(params: dict[str, object], old: object, new: object,
                                      fires: bool) -> None:  # fmt: skip
    r = rule(type="transition", field="amount", **params)
    assert r.evaluate(change({"amount": old}, {"amount": new}), {}).holds is fires


def test_transition_backwards_in_ordered_list() -> None:
    r = rule(type="transition", field="stage", change="backwards", order=["a", "b", "c"])
    assert r.evaluate(change({"stage": "c"}, {"stage": "a"}), {}).evidence["steps_back"] == 2
    assert not r.evaluate(change({"stage": "a"}, {"stage": "c"}), {}).holds


def test_transition_pushed_later_counts_pushes_per_record() -> None:
    r = rule(type="transition", field="close_date", change="pushed_later", min_pushes=2)
    first = r.evaluate(change({"close_date": "2026-03-01"}, {"close_date": "2026-03-10"}), {})
    assert not first.holds and first.state == {"pushes": 1}
    second = r.evaluate(
        change({"close_date": "2026-03-10"}, {"close_date": "2026-04-01"}), first.state or {}
    )
    assert second.holds and second.evidence["pushes"] == 2 and second.evidence["days_pushed"] == 22
    earlier = r.evaluate(change({"close_date": "2026-04-01"}, {"close_date": "2026-03-20"}), {})
    assert not earlier.holds


def test_transition_non_number_yields_no_alert() -> None:
    r = rule(type="transition", field="amount", change="increased", pct=10)
    assert not r.evaluate(change({"amount": "n/a"}, {"amount": 5}), {}).holds
