"""Episodes, reminders with backoff, escalation, timer-driven firing (injected clock)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.contracts.alerts import AlertStatus
from streams.decode import RawRecord
from streams.judge import Engine
from streams.judge.episodes import change_context, remind, step
from streams.judge.state import state_of
from streams.org import OrgDirectory, Person
from streams.rules.ruleset import RuleSet
from streams.timers import TimerIndex
from tests.unit.alerting_fixtures import T0, change, rule
from tests.unit.rulekit import judge_kpis, judge_timers

ORG = OrgDirectory({"rep-1": Person(manager="mgr-1", team="west", timezone="UTC")})


def test_episode_fire_remind_backoff_escalate_resolve() -> None:
    r = rule(type="condition", condition="deal.amount <= 0.0", realert={"every": "PT10M",
             "backoff": 2.0, "max_every": "PT30M"}, escalate_after=2)  # fmt: skip
    c = change(None, {"amount": 0.0})
    alerts, episode = step(r, c, r.evaluate(c, {}), None)
    assert [a.status for a in alerts] == [AlertStatus.FIRING]
    assert episode is not None and episode["next"] == (T0 + timedelta(minutes=10)).timestamp()
    seen = []
    now = T0
    for _ in range(4):
        now = T0 + timedelta(seconds=float(episode["next"]) - T0.timestamp())
        ctx = change_context(r, change({"amount": 0.0}, {}, at=T0, now=now))
        out, episode = remind(r, ctx, episode, {}, ORG.manager_of)
        seen.append((out[0].status, out[0].sequence, round((now - T0).total_seconds() / 60)))
    # delays 10, 20 (x2), 30 (capped), 30 minutes; the 3rd notification is the escalation
    assert seen == [
        (AlertStatus.REMINDER, 2, 10), (AlertStatus.REMINDER, 3, 30),
        (AlertStatus.ESCALATED, 4, 60), (AlertStatus.REMINDER, 5, 90),
    ]  # fmt: skip
    assert episode["esc"] == "mgr-1"
    # not due yet: nothing
    ctx = change_context(r, change({"amount": 0.0}, {}, now=now + timedelta(minutes=1)))
    assert remind(r, ctx, episode, {}, ORG.manager_of)[0] == []
    fixed = change({"amount": 0.0}, {"amount": 5.0}, now=now)
    alerts, closed = step(r, fixed, r.evaluate(fixed, {}), episode)
    assert closed is None and alerts[0].status is AlertStatus.RESOLVED
    assert alerts[0].sequence == 6 and alerts[0].escalated_to == "mgr-1"


def test_replayed_event_gives_the_same_alert_id() -> None:
    r = rule(type="condition", condition="deal.amount <= 0.0")
    c1 = change(None, {"amount": 0.0}, event_id="e-1")
    c2 = change(None, {"amount": 0.0}, event_id="e-1")
    a1, _ = step(r, c1, r.evaluate(c1, {}), None)
    a2, _ = step(r, c2, r.evaluate(c2, {}), None)
    assert a1[0].alert_id == a2[0].alert_id and a1[0].sequence == a2[0].sequence == 1


def test_resolve_when_ends_the_episode() -> None:
    r = rule(type="required_fields", fields=["next_step"], resolve_when="deal.stage == 'Lost'")
    c = change(None, {"stage": "Proposal"})
    _, episode = step(r, c, r.evaluate(c, {}), None)
    lost = change({"stage": "Proposal"}, {"stage": "Lost"})
    alerts, closed = step(r, lost, r.evaluate(lost, {}), episode)
    assert closed is None and alerts[0].status is AlertStatus.RESOLVED


def _engine(rules: list[Any], clock: ManualClock) -> tuple[Engine, dict[bytes, bytes]]:
    engine = Engine(RuleSet.build(rules), clock=clock, org=ORG)
    return engine, {}


_OFFSETS = itertools.count()  # input offsets only grow, as on a Kafka partition


def _feed(engine: Engine, table: dict[bytes, bytes], events: list[dict[str, Any]]) -> Any:
    records = [RawRecord("t", 1, next(_OFFSETS), e["entity_id"].encode(), orjson.dumps(e))
               for e in events]  # fmt: skip
    result = engine.process(records, table.get)
    table.update({k: v for k, (_, v) in result.writes.items()})
    return result


def _event(eid: str, op: str, at: Any, **fields: Any) -> dict[str, Any]:
    return {"event_id": eid, "source": "t", "entity": "deal", "entity_id": "D-1", "op": op,
            "occurred_at": at.isoformat(), "owner_id": "rep-1", "fields": fields}  # fmt: skip


def test_timer_fires_on_time_once_and_survives_a_rebuilt_index() -> None:
    clock = ManualClock(T0)
    r = rule(type="inactivity", after="PT1H", activity_fields=["stage"],
             realert={"every": "PT30M"})  # fmt: skip
    engine, table = _engine([r], clock)
    result = _feed(engine, table, [_event("e1", "create", T0, stage="Proposal")])
    key = b"deal:D-1"
    assert result.due[key] == (T0 + timedelta(hours=1)).timestamp()
    assert orjson.loads(table[key])["p"] == 1
    index = TimerIndex()
    index.schedule(key, result.due[key])
    clock.advance(timedelta(minutes=59))
    assert index.pop_due(clock().timestamp(), 10) == []
    clock.advance(timedelta(minutes=1))
    keys = index.pop_due(clock().timestamp(), 10)
    fired = judge_timers(engine.rules, keys, table.get, clock(), ORG)
    assert [a.status for a in fired.alerts] == [AlertStatus.FIRING]
    assert fired.alerts[0].fired_at == T0 + timedelta(hours=1)
    table.update({k: v for k, (_, v) in fired.writes.items()})
    # the same deadline judged again (a replay after a crash before the write) gives the
    # same alert id; after the write, the open episode blocks a second FIRING
    state = orjson.loads(table[key])
    assert state_of(state).next_due() == (T0 + timedelta(hours=1, minutes=30)).timestamp()
    again = judge_timers(engine.rules, [key], table.get, clock(), ORG)
    assert again.alerts == []
    # a restart rebuilds the index from the table: the reminder is still due on time
    rebuilt = TimerIndex()
    rebuilt.schedule(key, state_of(state).next_due())
    clock.advance(timedelta(minutes=30))
    reminder = judge_timers(engine.rules, rebuilt.pop_due(clock().timestamp(), 10), table.get,
                        clock(), ORG)  # fmt: skip
    assert [(a.status, a.sequence) for a in reminder.alerts] == [(AlertStatus.REMINDER, 2)]
    table.update({k: v for k, (_, v) in reminder.writes.items()})
    result = _feed(engine, table, [_event("e2", "update", clock(), stage="Negotiation")])
    assert [(a.status, a.sequence) for a in result.alerts] == [(AlertStatus.RESOLVED, 3)]
    assert result.alerts[0].alert_id == fired.alerts[0].alert_id


def test_rule_error_isolated_and_missing_field_counted() -> None:
    clock = ManualClock(T0)
    broken = rule(id="broken", type="condition", condition="deal.amount > 'x'")
    late = rule(id="late", type="overdue", field="close_date")
    fine = rule(id="fine", type="condition", condition="deal.stage == 'Proposal'")
    engine, table = _engine([broken, late, fine], clock)
    result = _feed(engine, table, [_event("e1", "create", T0, stage="Proposal", amount=5)])
    assert result.stats.rule_errors["broken"] == 1
    assert result.stats.skips[("late", "missing_field")] == 1
    assert [a.rule_id for a in result.alerts] == ["fine"]


def test_kpi_sustain_fires_from_the_timer() -> None:
    clock = ManualClock(T0)
    r = rule(type="kpi_threshold", kpi="win_rate", min=0.2, sustain="PT10M")
    rules = RuleSet.build([r])
    table: dict[bytes, bytes] = {}
    snap = {"kpi": "win_rate", "scope": {"kind": "team", "id": "west"},
            "window": {"kind": "rolling_30d"}, "value": 0.1, "trust": {"value": 0.9},
            "computed_at": T0.isoformat()}  # fmt: skip
    result = judge_kpis(rules, [RawRecord("k", 0, 0, b"k", orjson.dumps(snap))], table.get,
                          clock())  # fmt: skip
    assert result.alerts == []
    table.update({k: v for k, (_, v) in result.writes.items()})
    [(key, due)] = result.due.items()
    assert due == (T0 + timedelta(minutes=10)).timestamp()
    clock.advance(timedelta(minutes=10))
    fired = judge_timers(rules, [key], table.get, clock(), ORG)
    assert [a.status for a in fired.alerts] == [AlertStatus.FIRING]
    assert fired.alerts[0].subject.scope == "team:west"
    bad = judge_kpis(rules, [RawRecord("k", 0, 1, b"k", b"{nope")], table.get, clock())
    assert bad.stats.invalid["kpi_invalid_json"] == 1


def test_timer_scan_leaves_partitions_it_does_not_own() -> None:
    clock = ManualClock(T0)
    r = rule(type="inactivity", after="PT1M")
    engine, table = _engine([r], clock)
    _feed(engine, table, [_event("e1", "create", T0, stage="Proposal")])  # partition 1
    clock.advance(timedelta(minutes=2))
    assert judge_timers(engine.rules, [b"deal:D-1"], table.get, clock(), ORG, {0}).alerts == []
    owned = judge_timers(engine.rules, [b"deal:D-1"], table.get, clock(), ORG, {0, 1})
    assert [a.status for a in owned.alerts] == [AlertStatus.FIRING]
    assert owned.writes[b"deal:D-1"][0] == 1


def test_deleting_a_record_resolves_its_open_episodes() -> None:
    clock = ManualClock(T0)
    r = rule(type="condition", condition="deal.amount <= 0.0")
    engine, table = _engine([r], clock)
    fired = _feed(engine, table, [_event("e1", "create", T0, amount=0.0)])
    assert [a.status for a in fired.alerts] == [AlertStatus.FIRING]
    deleted = _feed(engine, table, [_event("e2", "delete", T0)])
    assert deleted.alerts == [] and deleted.due[b"deal:D-1"] == 0.0
    done = judge_timers(engine.rules, [b"deal:D-1"], table.get, clock(), ORG)
    assert [(a.status, a.sequence) for a in done.alerts] == [(AlertStatus.RESOLVED, 2)]
    assert done.alerts[0].evidence == {"reason": "record deleted"}
    assert done.due[b"deal:D-1"] is None


def test_kpi_rules_are_indexed_by_kpi_and_snapshots_skipped_when_none_watch() -> None:
    threshold = rule(id="wr", type="kpi_threshold", kpi="win_rate", min=0.2)
    other = rule(id="pipe", type="kpi_threshold", kpi="open_pipeline_value", min=1.0)
    off = rule(id="off", type="kpi_threshold", kpi="win_rate", min=0.5, enabled=False)
    record = rule(id="rec", type="condition", condition="deal.stage == 'Proposal'")
    rules = RuleSet.build([threshold, other, off, record])
    assert rules.has_kpi_rules
    assert [c.id for c in rules.kpi_rules("win_rate")] == ["wr"]  # enabled ones only
    assert [c.id for c in rules.kpi_rules("deals_won")] == []
    without = RuleSet.build([record])
    assert not without.has_kpi_rules
    junk = [RawRecord("k", 0, 0, b"k", b"{nope")]
    assert judge_kpis(without, junk, {}.get, T0).stats.invalid == {}  # not even decoded
    assert judge_kpis(rules, junk, {}.get, T0).stats.invalid["kpi_invalid_json"] == 1
