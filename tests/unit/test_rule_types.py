"""Each rule type through the engine: condition, transition, required_fields."""

from __future__ import annotations

from tests.unit.rulekit import event, fired, pairs, ruleset

CONDITION = """
id: big
type: condition
condition: 'deal.amount > 1000.0'
message: 'Deal {subject.id}: {deal.amount}'
"""


def test_condition_is_a_lasting_episode_that_resolves() -> None:
    alerts = fired(
        ruleset(CONDITION),
        event("D1", "create", amount=5000),
        event("D1", "update", 1, amount=6000),
        event("D1", "update", 2, amount=10),
    )
    assert pairs(alerts) == [("big", "D1", "FIRING"), ("big", "D1", "RESOLVED")]
    assert alerts[0].alert_id == alerts[1].alert_id and alerts[1].sequence == 2
    assert alerts[0].message == "Deal D1: 5,000"


def test_condition_each_time_fires_on_every_holding_change() -> None:
    rules = ruleset(CONDITION + "each_time: true\n")
    alerts = fired(rules, event("D1", "create", amount=5000), event("D1", "update", 1, amount=6000))
    assert pairs(alerts) == [("big", "D1", "FIRING"), ("big", "D1", "FIRING")]
    assert alerts[0].alert_id != alerts[1].alert_id


def test_integers_and_doubles_mix_in_cel() -> None:
    rules = ruleset("""
id: jump
type: condition
condition: 'has(old.amount) && deal.amount > old.amount * 1.5'
each_time: true
message: m
""")
    alerts = fired(rules, event("D1", "create", amount=100), event("D1", "update", 1, amount=151),
                   event("D1", "update", 2, amount=152.0))  # fmt: skip
    assert pairs(alerts) == [("jump", "D1", "FIRING")]


TRANSITIONS = """
rules:
  - id: back
    type: transition
    field: stage
    change: backwards
    order: [A, B, C]
    message: '{evidence.old} -> {evidence.new}'
  - id: swing
    type: transition
    field: amount
    change: changed_by
    pct: 50
    message: '{evidence.pct}'
  - id: pushed
    type: transition
    field: close_date
    change: pushed_later
    min_pushes: 2
    message: 'push {evidence.pushes}'
"""


def test_transition_backwards() -> None:
    alerts = fired(
        ruleset(TRANSITIONS), event("D1", "create", stage="A"),
        event("D1", "update", 1, stage="C"), event("D1", "update", 2, stage="B"),
    )  # fmt: skip
    assert pairs(alerts) == [("back", "D1", "FIRING")]
    assert alerts[0].message == "C -> B" and alerts[0].evidence["steps_back"] == 1


def test_transition_changed_by_pct_both_ways() -> None:
    alerts = fired(ruleset(TRANSITIONS), event("D1", "create", amount=100),
                   event("D1", "update", 1, amount=140), event("D1", "update", 2, amount=300),
                   event("D1", "update", 3, amount=100))  # fmt: skip
    assert [a.evidence["pct"] for a in alerts] == [114.29, 66.67]


def test_transition_second_push_fires_and_counts_per_record() -> None:
    alerts = fired(
        ruleset(TRANSITIONS),
        event("D1", "create", close_date="2026-03-01"),
        event("D1", "update", 1, close_date="2026-04-01"),
        event("D2", "create", close_date="2026-03-01"),
        event("D1", "update", 2, close_date="2026-02-01"),  # earlier: not a push
        event("D1", "update", 3, close_date="2026-05-01"),
        event("D1", "update", 4, close_date="2026-06-01"),
        event("D2", "update", 5, close_date="2026-04-01"),
    )
    assert [(a.subject.id, a.message) for a in alerts] == [("D1", "push 2"), ("D1", "push 3")]


def test_required_fields_when_stages_and_resolution() -> None:
    rules = ruleset("""
id: req
type: required_fields
fields: [amount, next_step]
when_stages: [Negotiation]
message: 'missing {evidence.missing_text}'
""")
    alerts = fired(rules, event("D1", "create", stage="Proposal"),
                   event("D1", "update", 1, stage="Negotiation", next_step="  "),
                   event("D1", "update", 2, amount=10, next_step="call"))  # fmt: skip
    assert pairs(alerts) == [("req", "D1", "FIRING"), ("req", "D1", "RESOLVED")]
    assert alerts[0].message == "missing amount, next_step"
