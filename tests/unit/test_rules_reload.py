"""Rule reloads in the engine: per-rule state kept for same id and type, dropped on a type
change or a delete (open episodes then end with a RESOLVED); a raising rule is isolated and
counted."""

from __future__ import annotations

from tests.unit.rulekit import EngineHarness, event, ruleset

PUSHED = """
id: pushed
type: transition
field: close_date
change: pushed_later
min_pushes: {n}
message: m
"""

AS_CONDITION = """
id: pushed
type: condition
condition: 'deal.close_date > "2026-01-01"'
message: m
"""


Harness = EngineHarness


def test_state_survives_an_edit_with_same_id_and_type() -> None:
    h = Harness(PUSHED.format(n=3))
    h.send(event("D1", "create", close_date="2026-03-01"),
           event("D1", "update", 1, close_date="2026-04-01"))  # fmt: skip
    assert h.rule_state("D1")["r"] == {"pushed": {"pushes": 1}}
    h.engine.rules = ruleset(PUSHED.format(n=2) + "version: 2\n")  # threshold edited
    assert h.send(event("D1", "update", 2, close_date="2026-05-01")) == [("pushed", "D1", "FIRING")]


def test_state_dropped_when_type_changes_then_rebuilt() -> None:
    h = Harness(PUSHED.format(n=2))
    h.send(event("D1", "create", close_date="2026-03-01"),
           event("D1", "update", 1, close_date="2026-04-01"))  # fmt: skip
    h.engine.rules = ruleset(AS_CONDITION)
    alerts = h.send(event("D1", "update", 2, close_date="2026-05-01"))
    assert alerts == [("pushed", "D1", "FIRING")]
    assert h.rule_state("D1")["r"] is None  # the transition counter is gone
    assert h.rule_state("D1")["t"] == {"pushed": "condition"}
    h.engine.rules = ruleset(PUSHED.format(n=2))  # back to transition: count starts anew
    # the condition's open episode ends with a RESOLVED (rule changed)
    assert h.send(event("D1", "update", 3, close_date="2026-06-01")) == [
        ("pushed", "D1", "RESOLVED")]  # fmt: skip
    assert h.rule_state("D1")["r"] == {"pushed": {"pushes": 1}}
    assert h.rule_state("D1")["a"] is None


def test_deleted_rule_state_is_dropped_on_next_change() -> None:
    h = Harness(PUSHED.format(n=5))
    h.send(event("D1", "create", close_date="2026-03-01"),
           event("D1", "update", 1, close_date="2026-04-01"))  # fmt: skip
    h.engine.rules = ruleset("id: other\ntype: condition\ncondition: 'true'\nmessage: m\n")
    h.send(event("D1", "update", 2, close_date="2026-05-01"))
    assert h.rule_state("D1")["r"] is None


def test_raising_rule_is_isolated_and_counted() -> None:
    h = Harness("""
rules:
  - id: raises
    type: condition
    condition: 'deal.amount * 2.0 > 10.0'
    message: m
  - id: works
    type: condition
    condition: 'has(deal.amount)'
    message: m
""")
    alerts = h.send(event("D1", "create", amount="n/a"), event("D2", "create", amount=10))
    assert sorted(alerts) == [("raises", "D2", "FIRING"), ("works", "D1", "FIRING"),
                              ("works", "D2", "FIRING")]  # fmt: skip
    assert h.errors == {"raises": 1}
