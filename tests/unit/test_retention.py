"""Retention of the hot state: what leaves the entity table, when, and what never does."""

from __future__ import annotations

from typing import Any

import orjson

from streams.clock import ManualClock
from streams.judge import Engine
from streams.retention import RetentionPolicy, eviction_reason, is_closed, sweep
from streams.rules.loader import load_text
from streams.rules.ruleset import RuleSet
from tests.unit.helpers import T0, event, raw

DAY = 86400.0
POLICY = RetentionPolicy(closed_s=30 * DAY, untouched_s=180 * DAY)
NOW = T0.timestamp()
COMMITTED = {0: 1_000}


def state(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"f": {"stage": "Won"}, "u": NOW - 31 * DAY, "p": 0,
                            "q": [0, 10, NOW - 31 * DAY]}  # fmt: skip
    base.update(extra)
    return base


def test_closed_records_go_after_the_closed_retention() -> None:
    assert eviction_reason(b"deal:D-1", state(), NOW, POLICY, COMMITTED) == "closed"
    young = state(u=NOW - 29 * DAY, q=[0, 10, NOW - 29 * DAY])
    assert eviction_reason(b"deal:D-1", young, NOW, POLICY, COMMITTED) is None
    # ingested recently (a replay of old history): its age counts from the ingest
    replayed = state(q=[0, 10, NOW - DAY])
    assert eviction_reason(b"deal:D-1", replayed, NOW, POLICY, COMMITTED) is None


def test_open_records_go_only_when_untouched_long() -> None:
    open_deal = state(f={"stage": "Proposal"})
    assert eviction_reason(b"deal:D-2", open_deal, NOW, POLICY, COMMITTED) is None
    old = state(f={"stage": "Proposal"}, u=NOW - 181 * DAY, q=[0, 10, NOW - 181 * DAY])
    assert eviction_reason(b"deal:D-2", old, NOW, POLICY, COMMITTED) == "untouched"


def test_what_is_never_evicted() -> None:
    reminder = {"rule": {"id": "x", "seq": 1, "at": 0.0, "next": NOW + DAY}}
    assert eviction_reason(b"deal:D-1", state(a=reminder), NOW, POLICY, COMMITTED) is None
    timer = {"idle": {"due": NOW + DAY}}
    assert eviction_reason(b"deal:D-1", state(r=timer), NOW, POLICY, COMMITTED) is None
    # its last input record is not committed yet: a replay must still find its position
    assert eviction_reason(b"deal:D-1", state(), NOW, POLICY, {0: 10}) is None
    assert eviction_reason(b"deal:D-1", state(), NOW, POLICY, {}) is None
    assert eviction_reason(b"kpi:win_rate", state(), NOW, POLICY, COMMITTED) is None
    off = RetentionPolicy(closed_s=0, untouched_s=0)
    assert not off.enabled
    assert eviction_reason(b"deal:D-1", state(), NOW, off, COMMITTED) is None


def test_open_episodes_end_with_a_resolved_alert_before_the_tombstone() -> None:
    episode = {"id": "abc", "seq": 1, "at": NOW - 40 * DAY, "rv": 2, "sv": "warning"}
    blob = orjson.dumps(state(a={"deal-lost-without-reason": episode}, o="rep-1"))
    first = sweep([(b"deal:D-7", blob)], NOW, POLICY, COMMITTED)
    [alert] = first.result.alerts
    assert (alert.alert_id, alert.sequence, alert.status.value) == ("abc", 2, "RESOLVED")
    assert alert.evidence == {"reason": "record retired"} and alert.owner_id == "rep-1"
    assert alert.resolved_at is not None
    assert alert.resolved_at.timestamp() == NOW - 31 * DAY + 30 * DAY  # when it expired
    assert first.result.writes == {b"deal:D-7": (0, None)}
    # a crash before the tombstone: the next sweep, later, renders the same alert
    again = sweep([(b"deal:D-7", blob)], NOW + 3600, POLICY, COMMITTED)
    assert [a.model_dump_json() for a in again.result.alerts] == [alert.model_dump_json()]


def test_what_counts_as_closed() -> None:
    assert is_closed("deal", {"f": {"stage": "Lost"}}, POLICY)
    assert not is_closed("deal", {"f": {"stage": "Negotiation"}}, POLICY)
    assert is_closed("activity", {"f": {"type": "call"}}, POLICY)  # logged: done
    assert not is_closed("activity", {"f": {"status": "Planned"}}, POLICY)
    assert is_closed("task", {"f": {"status": " Completed "}}, POLICY)
    assert not is_closed("task", {"f": {}}, POLICY)
    assert is_closed("lead", {"f": {}, "x": True}, POLICY)  # deleted
    assert not is_closed("lead", {"f": {"status": "Contacted"}}, POLICY)


def test_sweep_writes_tombstones_for_owned_partitions_only() -> None:
    items = [
        (b"deal:D-1", orjson.dumps(state())),
        (b"deal:D-2", orjson.dumps(state(f={"stage": "Proposal"}))),
        (b"deal:D-3", orjson.dumps(state(p=1, q=[1, 3, NOW - 40 * DAY]))),  # not owned
    ]
    swept = sweep(items, NOW, POLICY, COMMITTED)
    assert swept.result.writes == {b"deal:D-1": (0, None)}
    assert swept.result.due == {b"deal:D-1": None}
    assert swept.evicted == {"closed": 1} and swept.scanned == 3


def test_an_event_for_an_evicted_record_starts_it_afresh() -> None:
    """The documented policy: after eviction the record is unknown; a later update is judged
    like a first event (no before: no transition alert)."""
    loaded = load_text("""
rules:
  - id: reopened
    type: transition
    field: stage
    change: backwards
    order: [Prospecting, Negotiation, Won]
    message: "{subject.id} back"
""")
    assert loaded.ok, loaded.problems
    engine = Engine(RuleSet.build(r.compiled for r in loaded.rules), clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    for e in (event("D-9", "create", 0, stage="Negotiation"), event("D-9", stage="Won")):
        for key, (_, blob) in engine.process([raw(e)], table.get).writes.items():
            assert blob is not None
            table[key] = blob
    table.pop(b"deal:D-9")  # evicted
    result = engine.process([raw(event("D-9", minutes=5, stage="Prospecting"))], table.get)
    assert result.alerts == []
    [change] = result.changes
    assert change.before is None and change.after == {"stage": "Prospecting"}


def test_the_alert_board_keeps_a_bounded_number_of_open_alerts() -> None:
    from streams.alerting.board import AlertBoard

    board = AlertBoard(keep_resolved=2, keep_open=3)
    for i in range(10):  # point alerts: FIRING, never resolved
        assert board.apply({"alert_id": f"p{i}", "sequence": 1, "status": "FIRING"})
    assert {a["alert_id"] for a in board.query("firing")} == {"p9", "p8", "p7"}
    board.apply({"alert_id": "p9", "sequence": 2, "status": "RESOLVED"})
    assert {a["alert_id"] for a in board.query("firing")} == {"p8", "p7"}
