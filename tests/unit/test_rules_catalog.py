"""The live catalog: valid records replace, invalid ones never do, tombstones delete;
apply plans publish only changes; PUT decisions."""

from __future__ import annotations

import orjson

from streams.api.rules import PutDecision, decide_put
from streams.rules.catalog import RuleCatalog, encode_rule, plan_apply, to_publish
from streams.rules.model import parse_rule

BASE = {"id": "r1", "type": "condition", "condition": "deal.amount > 1.0", "message": "m"}


def value(**changes: object) -> bytes:
    return orjson.dumps({**BASE, **changes})


def test_valid_record_adds_then_changes_then_tombstone_deletes() -> None:
    catalog = RuleCatalog()
    assert catalog.apply(b"r1", value()).outcome == "added"
    assert catalog.apply(b"r1", value()).outcome == "unchanged"
    assert catalog.apply(b"r1", value(version=2, condition="deal.amount > 2.0")).outcome == (
        "changed"
    )
    assert catalog.rules["r1"].rule.version == 2
    assert catalog.apply(b"r1", None).outcome == "deleted"
    assert catalog.apply(b"r1", None).outcome == "ignored"
    assert catalog.rules == {}


def test_invalid_record_never_replaces_the_valid_one() -> None:
    catalog = RuleCatalog()
    catalog.apply(b"r1", value())
    before = catalog.ruleset().version
    bad = [
        value(version=2, condition="deal.amount >"),  # CEL
        value(version=2, severity="urgent"),  # enum
        value(version=2, id="other"),  # key differs from id
        b"{not json",
        value(version=2, type="nope"),
    ]
    results = [catalog.apply(b"r1", v) for v in bad]
    assert [r.outcome for r in results] == ["rejected"] * 5
    assert [r.problems[0].field for r in results] == [
        "condition", "severity", "id", "(json)", "type",
    ]  # fmt: skip
    assert catalog.rules["r1"].rule.version == 1
    assert catalog.ruleset().version == before


def test_type_change_is_reported() -> None:
    catalog = RuleCatalog()
    catalog.apply(b"r1", value())
    other = {"id": "r1", "type": "required_fields", "fields": ["amount"], "message": "m"}
    applied = catalog.apply(b"r1", orjson.dumps(other))
    assert (applied.outcome, applied.type_changed) == ("changed", True)


def test_plan_publishes_only_changes_and_bumps_versions() -> None:
    live = {
        "same": parse_rule({**BASE, "id": "same"}),
        "edit": parse_rule({**BASE, "id": "edit", "version": 3}),
        "gone": parse_rule({**BASE, "id": "gone"}),
    }
    wanted = [
        parse_rule({**BASE, "id": "same"}),
        parse_rule({**BASE, "id": "edit", "version": 1, "severity": "critical"}),
        parse_rule({**BASE, "id": "new"}),
    ]
    plan = plan_apply(wanted, live)
    assert [(i.rule_id, i.action) for i in plan] == [
        ("edit", "changed"), ("new", "added"), ("same", "unchanged"), ("gone", "live-only"),
    ]  # fmt: skip
    assert plan[0].rule is not None and plan[0].rule.version == 4
    records = to_publish(plan)
    assert [k for k, _ in records] == [b"edit", b"new"]
    pruned = to_publish(plan_apply(wanted, live, prune=True))
    assert (b"gone", None) in pruned


def test_encoded_rule_round_trips() -> None:
    rule = parse_rule({**BASE, "realert": {"every": "PT1H"}})
    catalog = RuleCatalog()
    assert catalog.apply(b"r1", encode_rule(rule)).outcome == "added"
    assert encode_rule(catalog.rules["r1"].rule) == encode_rule(rule)


def test_put_decisions() -> None:
    live = {"r1": parse_rule(BASE)}
    bad = decide_put("r1", "id: r1\ntype: condition\ncondition: 'x >'\nmessage: m\n", live)
    assert isinstance(bad, list)
    assert bad[0]["field"] == "condition" and bad[0]["line"] == 3
    wrong_id = decide_put("r2", value().decode(), live)
    assert isinstance(wrong_id, list) and wrong_id[0]["field"] == "id"
    assert decide_put("r1", value().decode(), live) == PutDecision("unchanged", live["r1"])
    changed = decide_put("r1", value(severity="critical").decode(), live)
    assert isinstance(changed, PutDecision) and (changed.action, changed.rule.version) == (
        "changed", 2,
    )  # fmt: skip
    empty = decide_put("r1", "  ", live)
    assert isinstance(empty, list) and empty[0]["field"] == "(body)"
