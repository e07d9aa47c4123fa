"""``frequency`` per owner: hits picked from the changes, re-keyed by owner, counted per
(rule, owner) with the event ids kept, so a replay never counts twice (injected clock)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from streams.clock import ManualClock
from streams.contracts.alerts import AlertStatus
from streams.decode import RawRecord
from streams.judge import Engine
from streams.judge.owner import count_hits, owner_hits, owner_partition, owner_rules, state_key
from streams.rules.model import parse_rule
from streams.rules.ruleset import RuleSet
from streams.rules.types.frequency import Hit, tally
from tests.unit.alerting_fixtures import T0, change, rule

LOST = {"id": "lost-3", "type": "frequency", "per": "owner", "count": 3, "window": "P1D",
        "fields": ["stage"], "condition": 'deal.stage == "Lost"',
        "message": "{owner.id} lost {evidence.count} deals"}  # fmt: skip


def _hit(n: int, hours: float, record: str | None = None) -> Hit:
    return Hit(f"e{n}", (T0 + timedelta(hours=hours)).timestamp(), record or f"D-{n}")


def test_tally_counts_within_the_window_in_any_order_and_clears() -> None:
    r: Any = parse_rule(LOST)
    state: dict[str, Any] = {}
    for n, hours in ((1, 5.0), (2, 0.0)):  # out of order: both within a day
        counted = tally(r, state, _hit(n, hours))
        assert not counted.outcome.holds and not counted.duplicate
        state = counted.state
    fired = tally(r, state, _hit(3, 20.0, record="D-1"))
    assert fired.outcome.holds and fired.outcome.point
    assert fired.event_ids == ("e2", "e1", "e3")
    assert fired.outcome.evidence["count"] == 3
    assert fired.outcome.evidence["records"] == ["D-1", "D-2"]
    assert fired.outcome.evidence["first_at"] == T0.isoformat()
    # cleared: the next alert needs three new hits
    state = fired.state
    assert not tally(r, state, _hit(4, 21.0)).outcome.holds


def test_tally_window_slides_and_late_hits_do_not_count() -> None:
    r: Any = parse_rule(LOST)
    state: dict[str, Any] = {}
    for n, hours in ((1, 0.0), (2, 1.0), (3, 25.5)):  # the first two leave the window
        counted = tally(r, state, _hit(n, hours))
        assert not counted.outcome.holds
        state = counted.state
    late = tally(r, state, _hit(4, 0.5))  # older than a day before the newest: not counted
    assert not late.outcome.holds and [x[1] for x in late.state.get("hits", [])] == ["e3"]
    assert tally(r, late.state, _hit(5, 26.0)).state["hits"][-1][1] == "e5"


def test_tally_replayed_hits_never_count_twice() -> None:
    r: Any = parse_rule(LOST)
    state: dict[str, Any] = {}
    for n in (1, 2):
        state = tally(r, state, _hit(n, float(n))).state
    again = tally(r, state, _hit(2, 2.0))
    assert again.duplicate and again.state == state
    fired = tally(r, state, _hit(3, 3.0))
    assert fired.outcome.holds
    # a replay of the whole batch after the alert: every hit is known, nothing fires again
    for n in (1, 2, 3):
        assert tally(r, fired.state, _hit(n, float(n))).duplicate


def test_owner_hits_pick_matching_changes_keyed_by_owner() -> None:
    rules = RuleSet.build([rule(**LOST), rule(id="per-record", type="frequency", count=2,
                                             window="P1D")])  # fmt: skip
    assert [c.id for c, _ in owner_rules(rules)] == ["lost-3"]
    lost = change({"stage": "Proposal"}, {"stage": "Lost"}, owner="rep-7", event_id="x1")
    won = change({"stage": "Proposal"}, {"stage": "Won"}, owner="rep-7")
    amount = change({"stage": "Lost"}, {"amount": 5.0}, owner="rep-7")
    orphan = change({"stage": "Proposal"}, {"stage": "Lost"}, owner="")
    found = owner_hits(rules, [lost, won, amount, orphan])
    [(owner, message)] = found.derived
    assert owner == "rep-7"
    assert orjson.loads(message) == {
        "r": "lost-3", "e": "x1", "t": T0.timestamp(), "id": "D-1", "n": T0.timestamp(),
    }  # fmt: skip
    assert found.stats.skips == {("lost-3", "no_owner"): 1}
    assert owner_hits(RuleSet(), [lost]).derived == []
    assert owner_partition("rep-7", 4) == owner_partition("rep-7", 4) < 4


def _records(owner: str, hits: list[Hit], start: int = 0) -> list[RawRecord]:
    return [
        RawRecord("f", owner_partition(owner, 2), start + i, owner.encode(), orjson.dumps(
            {"r": "lost-3", "e": h.event_id, "t": h.ts, "id": h.record}))
        for i, h in enumerate(hits)
    ]  # fmt: skip


def test_count_hits_alert_time_is_the_ingest_time_of_the_completing_change() -> None:
    rules = RuleSet.build([rule(**LOST)])
    ingested = T0 + timedelta(minutes=7)
    batch = [
        RawRecord("f", 0, i, b"rep-7", orjson.dumps({
            "r": "lost-3", "e": f"e{i}", "t": T0.timestamp() + i, "id": f"D-{i}",
            "n": ingested.timestamp() + i,
        }))
        for i in range(3)
    ]  # fmt: skip
    # judged now and an hour later (a replay): the same alert, byte for byte
    first = count_hits(rules, batch, {}.get, T0 + timedelta(hours=1))
    again = count_hits(rules, batch, {}.get, T0 + timedelta(hours=2))
    [alert] = first.alerts
    assert alert.fired_at == ingested + timedelta(seconds=2)
    assert [a.model_dump_json() for a in again.alerts] == [alert.model_dump_json()]


def test_count_hits_fires_once_per_owner_with_a_stable_alert_id() -> None:
    clock = ManualClock(T0 + timedelta(hours=3))
    rules = RuleSet.build([rule(**LOST)])
    table: dict[bytes, bytes] = {}
    batch = _records("rep-7", [_hit(1, 0.0), _hit(2, 1.0)]) + _records(
        "rep-8", [_hit(9, 1.0)]) + _records("rep-7", [_hit(3, 2.0)], start=5)  # fmt: skip
    first = count_hits(rules, batch, table.get, clock())
    [alert] = first.alerts
    assert (alert.status, alert.rule_id, alert.owner_id) == (AlertStatus.FIRING, "lost-3", "rep-7")
    assert alert.subject.kind == "owner" and alert.subject.id == "rep-7"
    assert alert.message == "rep-7 lost 3 deals"
    assert alert.event_ids == ["e1", "e2", "e3"] and alert.fired_at == clock()
    assert set(first.writes) == {state_key("lost-3", "rep-7"), state_key("lost-3", "rep-8")}
    # the state was not written (crash before the changelog): the replay gives the same id
    replay = count_hits(rules, batch, table.get, clock())
    assert [(a.alert_id, a.sequence) for a in replay.alerts] == [(alert.alert_id, 1)]
    # the state was written: the replay counts nothing again
    table.update({k: v for k, (_, v) in first.writes.items()})
    clock.advance(timedelta(minutes=5))
    again = count_hits(rules, batch, table.get, clock())
    assert again.alerts == [] and again.stats.replays == 4  # skipped by position
    # the same hits redelivered at new offsets: caught by their event ids
    table.update({k: v for k, (_, v) in first.writes.items()})
    later = _records("rep-7", [_hit(1, 0.0), _hit(2, 1.0), _hit(3, 2.0)], start=50)
    redelivered = count_hits(rules, later, table.get, clock())
    assert redelivered.alerts == [] and redelivered.stats.duplicates == 3
    # a rule no longer counted per owner drops its hits
    other = RuleSet.build([rule(**{**LOST, "per": "record"})])
    assert count_hits(other, batch, table.get, clock()).stats.invalid["rule_gone"] == 4


def test_engine_leaves_owner_counting_to_the_owner_partition() -> None:
    engine = Engine(RuleSet.build([rule(**LOST)]), clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    for i in range(4):
        line = orjson.dumps({
            "event_id": f"e{i}", "source": "t", "entity": "deal", "entity_id": "D-1",
            "op": "update", "occurred_at": T0.isoformat(), "owner_id": "rep-1",
            "fields": {"stage": "Lost" if i % 2 else "Proposal"},
        })  # fmt: skip
        result = engine.process([RawRecord("t", 0, i, b"D-1", line)], table.get)
        table.update({k: v for k, (_, v) in result.writes.items()})
        assert result.alerts == []
