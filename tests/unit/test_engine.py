from __future__ import annotations

from pathlib import Path

from streams.clock import ManualClock
from streams.judge import Engine
from streams.judge.state import decode_dict
from streams.rules.loader import load_paths, load_text
from streams.rules.ruleset import RuleSet
from tests.unit.helpers import T0, event, raw

REPO = Path(__file__).resolve().parents[2]

RULES = """
rules:
  - id: back
    type: transition
    field: stage
    change: backwards
    order: [Prospecting, Engaging, Negotiation, Won]
    message: "{subject.id} back from {evidence.old} to {evidence.new}"
  - id: need-amount
    type: required_fields
    fields: [amount]
    when_stages: [Negotiation]
    message: "{subject.id} misses {evidence.missing_text}"
  - id: explodes
    type: condition
    condition: "deal.amount > 10"
    message: "big"
"""


def engine_with(text: str = RULES) -> tuple[Engine, dict[bytes, bytes]]:
    loaded = load_text(text)
    assert loaded.ok, loaded.problems
    engine = Engine(RuleSet.build(r.compiled for r in loaded.rules), clock=ManualClock(T0))
    return engine, {}


def run(engine: Engine, store: dict[bytes, bytes], *events: dict | bytes):  # type: ignore[no-untyped-def]
    result = engine.process([raw(e) for e in events], store.get)  # offsets keep growing
    for key, (_, blob) in result.writes.items():
        assert blob is not None
        store[key] = blob
    return result


def test_stage_regression_fires_once_with_evidence() -> None:
    engine, store = engine_with()
    result = run(
        engine, store,
        event("D1", "create", stage="Prospecting", amount=5),
        event("D1", stage="Negotiation"),
        event("D1", stage="Engaging"),
    )  # fmt: skip
    fired = [a for a in result.alerts if a.rule_id == "back"]
    assert len(fired) == 1
    assert fired[0].evidence["old"] == "Negotiation"
    assert fired[0].message == "D1 back from Negotiation to Engaging"


def test_duplicate_event_counts_zero_and_fires_nothing() -> None:
    engine, store = engine_with()
    regress = event("D1", stage="Engaging", event_id="same")
    run(engine, store, event("D1", "create", stage="Negotiation", amount=1))
    first = run(engine, store, regress)
    again = run(engine, store, regress)
    assert len(first.alerts) == 1
    assert again.alerts == [] and again.stats.duplicates == 1 and not again.writes


def test_lasting_episode_fires_then_resolves_with_same_id() -> None:
    engine, store = engine_with()
    opened = run(engine, store, event("D2", "create", stage="Negotiation"))
    still = run(engine, store, event("D2", next_step="call"))
    closed = run(engine, store, event("D2", amount=3))
    (firing,) = [a for a in opened.alerts if a.rule_id == "need-amount"]
    assert firing.status == "FIRING" and firing.evidence["missing"] == ["amount"]
    assert [a for a in still.alerts if a.rule_id == "need-amount"] == []
    (resolved,) = [a for a in closed.alerts if a.rule_id == "need-amount"]
    assert resolved.status == "RESOLVED"
    assert resolved.alert_id == firing.alert_id and resolved.sequence == 2
    assert resolved.resolved_at == T0


def test_invalid_records_become_dead_letters_with_field() -> None:
    engine, store = engine_with()
    missing = event("D3")
    del missing["entity_id"]
    result = run(engine, store, b"{not json", missing, event("D3", "create", stage="Won"))
    reasons = [(d.reason, d.field) for _, d in result.dead]
    assert reasons == [("invalid_json", None), ("missing_field", "entity_id")]
    assert result.dead[0][0].value == b"{not json"
    assert result.stats.invalid == {"invalid_json": 1, "missing_field": 1}
    assert len(result.writes) == 1


def test_rule_error_is_isolated_and_counted() -> None:
    engine, store = engine_with()
    run(engine, store, event("D4", "create", stage="Negotiation", amount=1))
    result = run(engine, store, event("D4", amount="lots", stage="Engaging"))
    assert result.stats.rule_errors == {"explodes": 1}
    assert [a.rule_id for a in result.alerts] == ["back"]  # the other rule still fired


def test_noop_update_changes_nothing_and_evaluates_nothing() -> None:
    engine, store = engine_with()
    run(engine, store, event("D5", "create", stage="Engaging", amount=20))
    result = run(engine, store, event("D5", stage="Engaging"))
    assert result.stats.no_change == 1 and result.changes == [] and result.alerts == []


def test_batch_writes_only_last_state_per_record() -> None:
    engine, store = engine_with()
    result = run(
        engine, store,
        event("D6", "create", stage="Prospecting"), event("D6", stage="Engaging"),
        event("D6", stage="Negotiation"),
    )  # fmt: skip
    assert list(result.writes) == [b"deal:D6"]
    state = decode_dict(store[b"deal:D6"])
    assert state is not None and state["f"]["stage"] == "Negotiation" and len(state["ids"]) == 3


def test_swapped_rules_apply_to_next_batch() -> None:
    engine, store = engine_with()
    run(engine, store, event("D7", "create", stage="Negotiation", amount=1))
    engine.rules = RuleSet()
    assert run(engine, store, event("D7", stage="Prospecting")).alerts == []


def test_repository_rules_are_valid() -> None:
    result = load_paths([REPO / "rules"])
    assert result.ok, [str(p) for p in result.problems]
    assert {r.rule.id for r in result.rules} >= {"deal-stage-backwards"}
