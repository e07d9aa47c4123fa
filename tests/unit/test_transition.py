from __future__ import annotations

from typing import Any

import pytest

from streams.contracts.events import ChangeEvent
from streams.rules.change import Change
from streams.rules.model import TransitionRule
from streams.rules.types import transition
from tests.unit.helpers import T0, event


def change(before: dict[str, Any], after: dict[str, Any]) -> Change:
    ev = ChangeEvent.model_validate(event("D", **after))
    changed = frozenset(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return Change(ev, before, {**before, **after}, changed, T0)


def rule(**params: Any) -> TransitionRule:
    return TransitionRule(id="r", type="transition", message="m", **params)


@pytest.mark.parametrize(
    ("params", "old", "new", "fires"),
    [
        ({"change": "increased", "pct": 50}, 100, 151, True),
        ({"change": "increased", "pct": 50}, 100, 150, False),
        ({"change": "increased", "pct": 50}, 100, 20, False),
        ({"change": "decreased", "abs": 10}, 100, 89, True),
        ({"change": "changed_by", "pct": 900}, 100, 1000.5, True),
        ({"change": "changed_by", "pct": 50}, "n/a", 10, False),
        ({"change": "changed"}, "a", "b", True),
    ],
)
def test_numeric_movements(params: dict[str, Any], old: Any, new: Any, fires: bool) -> None:
    out = transition.evaluate(
        rule(field="amount", **params), change({"amount": old}, {"amount": new}), {}, None
    )
    assert out.holds is fires


def test_backwards_needs_known_values() -> None:
    r = rule(field="stage", change="backwards", order=["A", "B", "C"])
    assert (
        transition.evaluate(r, change({"stage": "C"}, {"stage": "A"}), {}, None).evidence[
            "steps_back"
        ]
        == 2
    )
    assert not transition.evaluate(r, change({"stage": "C"}, {"stage": "Lost"}), {}, None).holds
    assert not transition.evaluate(r, change({"stage": "A"}, {"stage": "B"}), {}, None).holds


def test_pushed_later_counts_pushes_per_record() -> None:
    r = rule(field="close_date", change="pushed_later", min_pushes=2)
    first = transition.evaluate(
        r, change({"close_date": "2026-03-01"}, {"close_date": "2026-04-01"}), {}, None
    )
    assert not first.holds and first.state == {"pushes": 1}
    earlier = transition.evaluate(
        r,
        change({"close_date": "2026-04-01"}, {"close_date": "2026-03-15"}),
        first.state or {},
        None,
    )
    assert not earlier.holds and earlier.state is None
    second = transition.evaluate(
        r,
        change({"close_date": "2026-04-01"}, {"close_date": "2026-05-01"}),
        first.state or {},
        None,
    )
    assert second.holds and second.evidence["pushes"] == 2 and second.evidence["days_pushed"] == 30


def test_missing_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="needs 'pct' or 'abs'"):
        rule(field="amount", change="increased")
    with pytest.raises(ValueError, match="needs 'order'"):
        rule(field="stage", change="backwards")
