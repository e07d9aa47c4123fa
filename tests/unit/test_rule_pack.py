"""The starter pack in rules/: each alert fires on its situation, with a readable message,
and a clean deal's life fires nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from tests.unit.rulekit import event, fired

REPO = Path(__file__).resolve().parents[2]
CLEAN = {"name": "Acme", "stage": "Prospecting", "amount": 1000, "close_date": "2026-06-30",
         "next_step": "call", "owner_id": "rep-1", "probability": 10}  # fmt: skip


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    result = load_paths([REPO / "rules"])
    assert result.ok
    return RuleSet.build(r.compiled for r in result.rules)


def test_clean_deal_life_fires_nothing(pack: RuleSet) -> None:
    alerts = fired(
        pack,
        event("D1", "create", **CLEAN),
        event("D1", "update", 1, stage="Qualification", probability=20),
        event("D1", "update", 2, stage="Proposal", amount=1200),
        event("D1", "update", 3, stage="Negotiation", close_date="2026-07-15"),
        event("D1", "update", 4, stage="Won", probability=100),
    )
    assert alerts == []


SCENARIOS = {
    "deal-stage-backwards": [{"stage": "Negotiation"}, {"stage": "Proposal"}],
    "deal-amount-swing": [{"amount": 1600}],
    "deal-amount-x10": [{"amount": 10000}],
    "deal-close-date-pushed-twice": [{"close_date": "2026-07-30"}, {"close_date": "2026-08-30"}],
    "deal-late-stage-missing-amount-or-next-step": [{"stage": "Negotiation", "next_step": ""}],
    "deal-amount-not-positive": [{"amount": 0}],
    "deal-owner-missing": [{"owner_id": None}],
    "deal-won-zero-amount": [{"stage": "Won", "amount": 0, "probability": 100}],
    "deal-probability-out-of-range": [{"probability": 140}],
    "deal-won-low-probability": [{"stage": "Won"}],
    "deal-lost-without-reason": [{"stage": "Lost"}],
    "deal-reopened": [{"stage": "Lost", "lost_reason": "price"}, {"stage": "Proposal"}],
    "deal-won-from-early-stage": [{"stage": "Won", "probability": 100}],
    "deal-missing-close-date": [{"stage": "Proposal", "close_date": None}],
    "deal-name-missing": [{"name": " "}],
    "deal-amount-not-a-number": [{"amount": "1k"}],
    "deal-unknown-stage": [{"stage": "Maybe"}],
    "deal-reassigned-late-stage": [{"stage": "Negotiation"}, {"owner_id": "rep-2"}],
}


@pytest.mark.parametrize("rule_id", sorted(SCENARIOS))
def test_rule_fires_on_its_situation(pack: RuleSet, rule_id: str) -> None:
    lines = [event("D1", "create", owner=None if rule_id == "deal-owner-missing" else "rep-1",
                   **CLEAN)]  # fmt: skip
    for minute, fields in enumerate(SCENARIOS[rule_id], start=1):
        owner = None if rule_id == "deal-owner-missing" else "rep-1"
        lines.append(event("D1", "update", minute, owner=owner, **fields))
    alerts = [a for a in fired(pack, *lines) if a.rule_id == rule_id]
    assert [a.status.value for a in alerts] == ["FIRING"]
    assert "(none)" not in alerts[0].title and "D1" in alerts[0].message + alerts[0].title
    assert "{" not in alerts[0].message


def test_create_time_rules(pack: RuleSet) -> None:
    alerts = fired(
        pack,
        event("D1", "create", **{**CLEAN, "close_date": "2026-01-31"}),
        event("D2", "create", **{**CLEAN, "amount": 250000}),
        event("L1", "create", entity="lead", owner=None, name="Jo"),
    )
    got = {(a.rule_id, a.subject.id) for a in alerts}
    assert got == {("deal-close-date-past-on-create", "D1"), ("deal-large-created", "D2"),
                   ("lead-missing-contact", "L1"), ("lead-owner-missing", "L1")}  # fmt: skip
    past = next(a for a in alerts if a.rule_id == "deal-close-date-past-on-create")
    assert past.message == "Deal Acme (D1) was created on 2026-03-02 with close date 2026-01-31."


def test_lasting_situation_resolves_when_fixed(pack: RuleSet) -> None:
    alerts = fired(pack, event("D1", "create", **CLEAN), event("D1", "update", 1, amount=-5),
                   event("D1", "update", 2, amount=900))  # fmt: skip
    mine = [a for a in alerts if a.rule_id == "deal-amount-not-positive"]
    assert [a.status.value for a in mine] == ["FIRING", "RESOLVED"]
    assert mine[0].alert_id == mine[1].alert_id


def test_deals_lost_by_one_owner_within_a_day(pack: RuleSet) -> None:
    lines = []
    for i, owner in enumerate(["rep-1", "rep-1", "rep-2", "rep-1"]):
        deal = f"D{i}"
        lines += [
            event(deal, "create", owner=owner, **CLEAN),
            event(deal, "update", 60 * i, owner=owner, stage="Lost", lost_reason="price"),
        ]
    alerts = [a for a in fired(pack, *lines) if a.rule_id == "deals-lost-by-owner"]
    [alert] = alerts  # rep-1 lost D0, D1 and D3; rep-2 only one
    assert alert.subject.kind == "owner" and alert.owner_id == "rep-1"
    assert alert.title == "rep-1 lost 3 deals in a day"
    assert "(D0, D1, D3)" in alert.message and "{" not in alert.message
