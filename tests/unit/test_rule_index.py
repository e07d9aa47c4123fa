"""Which rules an event meets: the index by the record fields a rule's CEL reads, creations
meeting every rule, create-only point rules. Observed through rules that raise (each
evaluation is counted as a rule error) and through the alerts."""

from __future__ import annotations

from tests.unit.rulekit import EngineHarness, event

#: Raises a type error on every evaluation (a string stage times a double), so the error
#: count says how often the rule was judged.
READS_STAGE = """
rules:
  - id: reads-stage
    type: condition
    condition: 'deal.stage * 2.0 > 1.0'
    message: m
  - id: reads-old
    type: condition
    condition: 'old.stage * 2.0 > 1.0 || deal.stage * 2.0 > 1.0'
    message: m
  - id: on-create
    type: condition
    each_time: true
    condition: 'event.op == "create" && deal.stage * 2.0 > 1.0'
    message: m
"""

REQUIRED = """
id: name-missing
type: required_fields
fields: [name]
message: m
"""


Harness = EngineHarness


def test_a_rule_is_judged_only_when_a_field_it_reads_changes() -> None:
    h = Harness(READS_STAGE)
    h.send(event("D1", "create", stage="Proposal", amount=10))
    assert h.errors == {"reads-stage": 1, "reads-old": 1, "on-create": 1}  # creation: all
    h.send(event("D1", "update", 1, amount=20))  # stage unchanged
    assert h.errors == {"reads-stage": 1, "reads-old": 2, "on-create": 1}  # old.* reads: any
    h.send(event("D1", "update", 2, stage="Negotiation"))
    assert h.errors == {"reads-stage": 2, "reads-old": 3, "on-create": 1}  # create-only: never


def test_a_creation_meets_a_required_field_it_does_not_carry() -> None:
    h = Harness(REQUIRED)
    assert h.send(event("D1", "create", stage="Proposal")) == [("name-missing", "D1", "FIRING")]
    assert h.send(event("D1", "update", 1, amount=5)) == []  # name still missing: no change
    assert h.send(event("D1", "update", 2, name="Acme")) == [("name-missing", "D1", "RESOLVED")]


def test_candidates_asked_again_are_those_of_a_fresh_walk_in_the_same_order() -> None:
    from pathlib import Path

    from streams.rules.loader import load_paths
    from streams.rules.ruleset import RuleSet

    compiled = [r.compiled for r in load_paths([Path("rules")]).rules]
    rules = RuleSet.build(compiled)
    asks = [
        ("deal", ("stage",)), ("deal", ("amount", "stage")), ("deal", ("stage", "amount")),
        ("deal", ("next_step", "close_date", "owner_id")), ("lead", ("status",)),
        ("deal", ()), ("activity", ("status", "due")),
    ]  # fmt: skip
    for _ in range(2):  # the second round is answered from what the first one kept
        for entity, names in asks:
            fresh = RuleSet.build(compiled).candidates(entity, names)
            assert [c.id for c in rules.candidates(entity, names)] == [c.id for c in fresh]
    assert len(rules._seen) == len(asks)
    assert [c.id for c in rules.candidates("deal", ("amount",), create=True)] == [
        c.id for c in rules.rules
        if c.rule.enabled and c.spec.kind != "kpi" and c.rule.applies_to.entity.value == "deal"
    ]  # fmt: skip
