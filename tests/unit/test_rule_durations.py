"""Rule durations: zero and negative timers, cadences and windows are refused with a message
that names the field (a non-positive ``realert.every`` would remind on every timer tick)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from streams.rules.loader import load_text

BASE: dict[str, dict[str, Any]] = {
    "inactivity": {"after": 3600},
    "frequency": {"count": 3, "window": "PT1H"},
    "overdue": {"field": "close_date"},
    "kpi_threshold": {"kpi": "win_rate", "min": 0.2},
    "kpi_anomaly": {"kpi": "new_deals"},
}


def problems(rule_type: str, **overrides: Any) -> list[str]:
    rule = {"id": "r1", "type": rule_type, "message": "m", **BASE[rule_type], **overrides}
    return [str(p) for p in load_text(yaml.safe_dump([rule]), "r.yaml").problems]


def test_the_base_rules_are_valid() -> None:
    for rule_type in BASE:
        assert problems(rule_type) == [], rule_type


@pytest.mark.parametrize(
    ("rule_type", "overrides", "field"),
    [
        ("inactivity", {"after": 0}, "after"),
        ("inactivity", {"after": -10}, "after"),
        ("inactivity", {"after": "PT0S"}, "after"),
        ("inactivity", {"realert": {"every": -5}}, "realert.every"),
        ("inactivity", {"realert": {"every": 0}}, "realert.every"),
        ("inactivity", {"realert": {"every": 60, "max_every": -1}}, "realert.max_every"),
        ("frequency", {"window": 0}, "window"),
        ("frequency", {"window": -60}, "window"),
    ],
)
def test_non_positive_durations_are_refused_naming_the_field(
    rule_type: str, overrides: dict[str, Any], field: str
) -> None:
    (problem,) = problems(rule_type, **overrides)
    assert f"rule 'r1' field '{field}': must be a positive duration, got" in problem
    assert problem.startswith("r.yaml:")  # file and line


@pytest.mark.parametrize(
    ("rule_type", "field", "negative"),
    [("overdue", "grace", -1), ("kpi_threshold", "sustain", "-PT1M"),
     ("kpi_anomaly", "cooldown", -30)],
)  # fmt: skip
def test_negative_tolerances_are_refused_and_zero_means_none(
    rule_type: str, field: str, negative: Any
) -> None:
    (problem,) = problems(rule_type, **{field: negative})
    assert f"field '{field}': must not be negative" in problem
    assert problems(rule_type, **{field: 0}) == []


def test_durations_over_ten_years_are_refused() -> None:
    (problem,) = problems("inactivity", after="P99999D")
    assert "field 'after': must be at most 3650 days, got 99999 days" in problem


def test_escalate_after_needs_one_reminder_at_least() -> None:
    (problem,) = problems("inactivity", escalate_after=0)
    assert "field 'escalate_after'" in problem
