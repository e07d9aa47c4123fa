"""Open episodes of a deleted or retyped rule end with a RESOLVED alert: on the next change
of the record, or at the timer scan the worker schedules when the rule set changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.contracts.alerts import AlertStatus
from streams.decode import RawRecord
from streams.judge import Engine
from streams.judge.retire import RULE_CHANGED, RULE_DELETED, retired_ids, retired_rules
from streams.judge.state import decode_dict, state_of
from streams.org import OrgDirectory, Person
from streams.rules.ruleset import RuleSet
from tests.unit.alerting_fixtures import T0, rule
from tests.unit.rulekit import judge_timers

ORG = OrgDirectory({"rep-1": Person(manager="mgr-1", team="west", timezone="UTC")})
KEY = b"deal:D-1"
NEG = {"id": "neg", "type": "condition", "condition": "deal.amount <= 0.0",
       "severity": "critical", "version": 3}  # fmt: skip


def _event(eid: str, at: Any, op: str = "update", **fields: Any) -> bytes:
    return orjson.dumps({
        "event_id": eid, "source": "t", "entity": "deal", "entity_id": "D-1", "op": op,
        "occurred_at": at.isoformat(), "owner_id": "rep-1", "fields": fields,
    })  # fmt: skip


class Harness:
    def __init__(self, *rules: Any) -> None:
        self.clock = ManualClock(T0)
        self.engine = Engine(RuleSet.build(rules), clock=self.clock, org=ORG)
        self.table: dict[bytes, bytes] = {}
        self.offset = 0

    def send(self, line: bytes) -> list[Any]:
        self.offset += 1
        result = self.engine.process([RawRecord("t", 0, self.offset, b"D-1", line)],
                                     self.table.get)  # fmt: skip
        self.table.update({k: v for k, (_, v) in result.writes.items()})
        return result.alerts

    def scan(self) -> list[Any]:
        result = judge_timers(self.engine.rules, [KEY], self.table.get, self.clock(), ORG)
        self.table.update({k: v for k, (_, v) in result.writes.items()})
        return result.alerts

    def state(self) -> dict[str, Any]:
        return dict(decode_dict(self.table[KEY]) or {})


def test_deleted_rule_resolves_on_the_next_change_of_the_record() -> None:
    h = Harness(rule(**NEG), rule(id="other", type="condition", condition="false"))
    [fired] = h.send(_event("e1", T0, "create", amount=0.0))
    assert fired.status is AlertStatus.FIRING
    h.engine.rules = RuleSet.build([rule(id="other", type="condition", condition="false")])
    h.clock.advance(timedelta(minutes=5))
    [closed] = h.send(_event("e2", T0 + timedelta(minutes=5), note="x"))
    assert (closed.status, closed.alert_id, closed.sequence) == (
        AlertStatus.RESOLVED, fired.alert_id, 2)  # fmt: skip
    assert closed.evidence == {"reason": RULE_DELETED}
    # built from the episode: the rule is gone, its version and severity are not
    assert (closed.rule_version, closed.severity.value) == (3, "critical")
    assert closed.resolved_at == T0 + timedelta(minutes=5) and closed.fired_at == T0
    assert closed.owner_id == "rep-1" and closed.subject.id == "D-1"
    assert "a" not in h.state() and "t" not in h.state()
    assert h.send(_event("e3", T0, amount=-1.0)) == []  # nothing left to close


def test_deleted_rule_resolves_at_the_timer_scan_without_any_change() -> None:
    h = Harness(rule(**NEG))
    [fired] = h.send(_event("e1", T0, "create", amount=0.0))
    assert state_of(h.state()).next_due() is None  # no reminder: no timer of its own
    h.engine.rules = RuleSet()
    assert retired_rules(h.state(), h.engine.rules) == {"neg": RULE_DELETED}
    [closed] = h.scan()
    assert (closed.status, closed.alert_id, closed.sequence) == (
        AlertStatus.RESOLVED, fired.alert_id, 2)  # fmt: skip
    assert closed.evidence == {"reason": RULE_DELETED}
    assert retired_rules(h.state(), h.engine.rules) == {}
    assert h.scan() == []  # replaying the scan on the new state closes nothing twice


def test_retyped_rule_resolves_its_episode_then_judges_afresh() -> None:
    h = Harness(rule(**NEG, realert={"every": "PT10M"}))
    [fired] = h.send(_event("e1", T0, "create", amount=0.0))
    retyped = rule(id="neg", type="required_fields", fields=["next_step"])
    h.engine.rules = RuleSet.build([retyped])
    assert retired_ids(RuleSet.build([rule(**NEG)]), h.engine.rules) == {"neg"}
    alerts = h.send(_event("e2", T0, amount=-1.0, next_step=""))
    assert [(a.status, a.evidence.get("reason")) for a in alerts] == [
        (AlertStatus.RESOLVED, RULE_CHANGED), (AlertStatus.FIRING, None)]  # fmt: skip
    assert alerts[0].alert_id == fired.alert_id
    assert alerts[1].alert_id != fired.alert_id  # the new rule opens its own episode
    assert h.state()["t"] == {"neg": "required_fields"}


def test_retired_ids_ignores_edits_of_the_same_type() -> None:
    before = RuleSet.build([rule(**NEG), rule(id="gone", type="condition", condition="true")])
    edited = RuleSet.build([rule(**{**NEG, "condition": "deal.amount < 0.0", "version": 4})])
    assert retired_ids(before, edited) == {"gone"}
    assert retired_ids(before, before) == set()
