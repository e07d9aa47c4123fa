"""Alert texts of the starter pack: nothing printed for absent values, RESOLVED alerts
worded as resolved, and a change from zero is not a x10."""

from __future__ import annotations

from tests.unit.poison import Pipeline, change_event


def test_lead_without_name_reads_without_a_placeholder() -> None:
    pipe = Pipeline()
    result = pipe.send(change_event(1, "L-00000057", "create", entity="lead", status="New"))
    (alert,) = [a for a in result.alerts if a.rule_id == "lead-missing-contact"]
    assert alert.message == "Lead (L-00000057) has no email and no phone."


def test_resolved_alert_has_its_own_wording_with_the_opening_evidence() -> None:
    pipe = Pipeline()
    pipe.send(change_event(1, "D1", "create", stage="Negotiation", amount=10, name="Acme"))
    result = pipe.send(change_event(2, "D1", next_step="call", minutes=1))
    (resolved,) = [
        a for a in result.alerts
        if a.rule_id == "deal-late-stage-missing-amount-or-next-step"
    ]  # fmt: skip
    assert resolved.status == "RESOLVED"
    assert resolved.title == "Resolved: Deal Acme (D1): next_step missing"
    assert resolved.message == "Resolved: Deal Acme (D1) is in Negotiation without next_step."


def test_resolved_message_template_is_used_when_given() -> None:
    from streams.decode import RawRecord
    from tests.unit.rulekit import EngineHarness, event

    harness = EngineHarness("""
rules:
  - id: need-amount
    type: required_fields
    fields: [amount]
    message: "{subject.id} has no amount"
    resolved_message: "{subject.id} has an amount[[: {deal.amount}]]"
""")
    messages = []
    for n, line in enumerate([event("D2", "create", stage="New"),
                              event("D2", "update", 1, amount=5)]):  # fmt: skip
        result = harness.engine.process([RawRecord("t", 0, n, b"k", line)], harness.state.get)
        harness.state.update({k: b for k, (_, b) in result.writes.items()})
        messages += [(a.status.value, a.title, a.message) for a in result.alerts]
    assert messages == [
        ("FIRING", "need-amount", "D2 has no amount"),
        ("RESOLVED", "Resolved: need-amount", "D2 has an amount: 5"),
    ]


def test_filling_a_zero_amount_is_not_an_extra_zero() -> None:
    pipe = Pipeline()
    pipe.send(change_event(1, "D1", "create", stage="Prospecting", amount=0, name="n"))
    result = pipe.send(change_event(2, "D1", amount=4200, minutes=1))
    fired = {a.rule_id for a in result.alerts}
    assert "deal-amount-x10" not in fired and "deal-amount-swing" not in fired


def test_a_real_tenfold_jump_still_fires_with_its_pct() -> None:
    pipe = Pipeline()
    pipe.send(change_event(1, "D1", "create", stage="Prospecting", amount=420, name="n"))
    result = pipe.send(change_event(2, "D1", amount=4200, minutes=1))
    (x10,) = [a for a in result.alerts if a.rule_id == "deal-amount-x10"]
    assert x10.evidence["pct"] == 900.0
    assert x10.message == "Amount of deal n (D1) jumped from 420 to 4200: an extra zero?"


def test_transition_from_zero_counts_only_for_abs_thresholds() -> None:
    from tests.unit.rulekit import EngineHarness, event

    harness = EngineHarness("""
rules:
  - {id: pct, type: transition, field: amount, change: increased, pct: 50, message: "p"}
  - {id: abs, type: transition, field: amount, change: increased, abs: 1000, message: "a"}
""")
    harness.send(event("D1", "create", amount=0))
    assert [r for r, _, _ in harness.send(event("D1", "update", 1, amount=4200))] == ["abs"]
    harness.send(event("D2", "create", amount="nan"))
    assert harness.send(event("D2", "update", 1, amount=1e308)) == []
