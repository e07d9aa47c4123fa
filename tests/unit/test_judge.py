"""The judge itself: one per-subject logic on a typed state (change, due timer, KPI point,
next due time), one isolation of rule errors, and the stored format it reads and writes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import orjson

from streams.contracts.alerts import AlertStatus
from streams.contracts.events import ChangeEvent
from streams.judge import BatchResult, EntityState, Judge
from streams.judge.batch import judge_changes, judge_due
from streams.org import OrgDirectory, Person
from streams.rules.kpi_point import read_point
from streams.rules.ruleset import CompiledRule, RuleSet
from tests.unit.alerting_fixtures import T0, rule
from tests.unit.helpers import raw

ORG = OrgDirectory({"rep-1": Person(manager="mgr-1", team="west", timezone="UTC")})
KEY = b"deal:D-1"


def _event(eid: str, op: str = "update", minutes: int = 0, **fields: Any) -> ChangeEvent:
    return ChangeEvent.model_validate({
        "event_id": eid, "source": "t", "entity": "deal", "entity_id": "D-1", "op": op,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(), "owner_id": "rep-1",
        "fields": fields,
    })  # fmt: skip


def _judge(*rules: CompiledRule) -> Judge:
    return Judge(RuleSet.build(rules), BatchResult(), org=ORG)


def _raising(compiled: CompiledRule) -> CompiledRule:
    """``compiled`` whose evaluation raises, as a rule with a bug would."""

    def boom(*_: Any) -> Any:
        raise RuntimeError("rule bug")

    spec = dataclasses.replace(compiled.spec, evaluate=boom, evaluate_kpi=boom, possible=None)
    return dataclasses.replace(compiled, spec=spec, possible=None)


def test_the_stored_format_is_read_and_written_with_its_short_keys() -> None:
    stored = {
        "f": {"stage": "Won"}, "ids": ["e1"], "q": [0, 7, 1.5], "u": 2.0, "c": 1.0,
        "o": "rep-1", "x": True, "r": {"r1": {"due": 9.0}}, "a": {"r2": {"id": "a", "seq": 1}},
        "t": {"r1": "inactivity"}, "p": 3, "cut": ["note"], "k": {"kpi": "win_rate"},
        "zz": "a key of a later version",
    }  # fmt: skip
    state = EntityState.decode(orjson.dumps(stored))
    assert state is not None
    assert (state.fields, state.ids, state.applied) == ({"stage": "Won"}, ["e1"], [0, 7, 1.5])
    assert (state.updated, state.created, state.owner, state.deleted) == (2.0, 1.0, "rep-1", True)
    assert state.rules == {"r1": {"due": 9.0}} and state.kinds == {"r1": "inactivity"}
    assert (state.partition, state.cut, state.kpi) == (3, ["note"], {"kpi": "win_rate"})
    assert state.extra == {"zz": "a key of a later version"}
    assert state.as_dict() == stored
    assert EntityState.decode(None) is None and EntityState.decode(b"[1, 2]") is None
    # empty rule states, episodes and tags are not written; a series has no fields or ids
    assert orjson.loads(EntityState(kpi={"kpi": "k"}, partition=0).encode()) == {
        "p": 0, "k": {"kpi": "k"}
    }  # fmt: skip


def test_on_change_returns_a_new_state_and_leaves_the_given_one_alone() -> None:
    judge = _judge(rule(id="need-amount", type="required_fields", fields=["amount"]))
    first = judge.on_change(_event("e1", "create", stage="Proposal"), None, T0, (0, 1))
    assert first is not None
    assert (first.fields, first.ids, first.owner) == ({"stage": "Proposal"}, ["e1"], "rep-1")
    assert first.created == first.updated == T0.timestamp() and first.applied == [
        0,
        1,
        T0.timestamp(),
    ]
    assert [a.status for a in judge.out.alerts] == [AlertStatus.FIRING]
    assert first.kinds == {"need-amount": "required_fields"} and "need-amount" in first.episodes
    second = judge.on_change(_event("e2", minutes=5, amount=10), first, T0, (0, 2))
    assert second is not None and second.fields == {"stage": "Proposal", "amount": 10}
    assert first.fields == {"stage": "Proposal"} and "need-amount" in first.episodes
    assert second.episodes == {} and second.ids == ["e1", "e2"]
    assert [a.status for a in judge.out.alerts] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    assert len(judge.out.changes) == 2


def test_replays_duplicates_and_late_changes_are_not_applied() -> None:
    judge = _judge()
    state = judge.on_change(_event("e1", "create", minutes=10, stage="Proposal"), None, T0, (0, 5))
    assert state is not None
    assert judge.on_change(_event("e9", minutes=20), state, T0, (0, 5)) is None  # same offset
    assert judge.on_change(_event("e1", minutes=20), state, T0, (0, 6)) is None  # same id
    assert judge.on_change(_event("e2", minutes=0), state, T0, (0, 7)) is None  # older change
    stats = judge.out.stats
    assert (stats.replays, stats.duplicates, stats.out_of_order) == (1, 1, 1)


def test_a_due_timer_fires_reminds_and_says_when_it_is_due_next() -> None:
    idle = rule(id="idle", type="inactivity", after="PT1H", realert={"every": "PT30M"})
    judge = _judge(idle)
    state = judge.on_change(_event("e1", "create", stage="Proposal"), None, T0, (0, 1))
    assert state is not None and not judge.out.alerts
    assert Judge.next_due(state) == (T0 + timedelta(hours=1)).timestamp()
    judge.on_due_record(KEY, state, T0 + timedelta(hours=1))
    assert [(a.status, a.sequence) for a in judge.out.alerts] == [(AlertStatus.FIRING, 1)]
    assert judge.out.alerts[0].alert_id == state.episodes["idle"]["id"]
    assert state.next_due() == (T0 + timedelta(hours=1, minutes=30)).timestamp()
    judge.on_due_record(KEY, state, T0 + timedelta(hours=1, minutes=30))
    assert [a.status for a in judge.out.alerts][1:] == [AlertStatus.REMINDER]
    assert state.next_due() == (T0 + timedelta(hours=2)).timestamp()


def test_a_kpi_point_arms_a_sustain_that_the_timer_fires() -> None:
    low = rule(id="low", type="kpi_threshold", kpi="win_rate", min=0.2, sustain="PT10M")
    judge = _judge(low)
    point = read_point({"kpi": "win_rate", "scope": {"kind": "team", "id": "west"},
                        "window": {"kind": "rolling_30d"}, "value": 0.1,
                        "computed_at": T0.isoformat()}, T0)  # fmt: skip
    assert not isinstance(point, str)
    series = judge.on_point(point, None, 4, T0)
    assert judge.out.alerts == [] and series.partition == 4 and series.fields is None
    assert series.next_due() == (T0 + timedelta(minutes=10)).timestamp()
    judge.on_due_series(series, T0 + timedelta(minutes=10))
    [fired] = judge.out.alerts
    assert (fired.status, fired.subject.scope) == (AlertStatus.FIRING, "team:west")
    assert series.next_due() is None  # the episode is open: no sustain deadline, no reminder


def test_a_rule_that_raises_is_counted_once_and_the_others_still_judge() -> None:
    broken = _raising(rule(id="broken", type="condition", condition="deal.stage == 'X'"))
    fine = rule(id="fine", type="condition", condition="deal.stage == 'Proposal'")
    judge = _judge(broken, fine)
    state = judge.on_change(_event("e1", "create", stage="Proposal"), None, T0, (0, 1))
    assert state is not None and "fine" in state.episodes  # the record itself went through
    assert [a.rule_id for a in judge.out.alerts] == ["fine"]
    assert dict(judge.out.stats.rule_errors) == {"broken": 1}
    assert not judge.out.stats.processing_errors and not judge.out.dead


def test_rule_errors_on_timers_and_kpi_points_are_counted_once_too() -> None:
    idle = _raising(rule(id="idle", type="inactivity", after="PT1H"))
    low = _raising(rule(id="low", type="kpi_threshold", kpi="win_rate", min=0.2))
    judge = _judge(idle, low)
    state = EntityState({"stage": "Proposal"}, ["e1"], owner="rep-1", partition=0)
    judge.on_due_record(KEY, state, T0)
    point = read_point({"kpi": "win_rate", "scope": {"kind": "global"}, "value": 0.1}, T0)
    assert not isinstance(point, str)
    judge.on_point(point, None, 0, T0)
    assert dict(judge.out.stats.rule_errors) == {"idle": 1, "low": 1}
    assert not judge.out.stats.processing_errors


def test_the_batches_write_each_subject_once_with_its_deadline() -> None:
    idle = rule(id="idle", type="inactivity", after="PT1H")
    rules = RuleSet.build([idle])
    table: dict[bytes, bytes] = {}
    events = [_event(f"e{n}", "create" if n == 0 else "update", n, stage=f"S{n}") for n in range(3)]
    records = [raw(orjson.loads(e.model_dump_json()), partition=2) for e in events]
    done = judge_changes(Judge(rules, BatchResult()), records, table.get, T0 + timedelta(minutes=2))
    assert done.alerts == [] and len(done.changes) == 3
    assert list(done.writes) == [KEY] and done.writes[KEY][0] == 2
    assert done.due[KEY] == (T0 + timedelta(minutes=2, hours=1)).timestamp()
    table[KEY] = done.writes[KEY][1] or b""
    due = judge_due(Judge(rules, BatchResult()), [KEY], table.get, T0 + timedelta(hours=2))
    assert [a.status for a in due.alerts] == [AlertStatus.FIRING]
    assert due.writes[KEY][0] == 2 and due.due[KEY] is None
