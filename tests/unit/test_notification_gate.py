"""Silences (matching, expiry), the per-owner budget and its digest, the alert board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from streams.alerting.board import AlertBoard
from streams.alerting.budget import NotificationBudget
from streams.alerting.gate import Gate
from streams.alerting.silences import SilenceBook
from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.contracts.silences import Silence
from streams.org import OrgDirectory, Person
from streams.timers import TimerIndex

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORG = OrgDirectory({"rep-1": Person(team="west"), "rep-2": Person(team="east")})


def alert(n: int, owner: str = "rep-1", rule: str = "r1", status: str = "FIRING",
          severity: str = "warning") -> AlertEvent:  # fmt: skip
    return AlertEvent(
        alert_id=f"a{n}", status=AlertStatus(status), rule_id=rule, rule_version=1,
        severity=Severity(severity), subject=Subject(kind="entity", entity="deal", id=f"D-{n}"),
        owner_id=owner, title="t", message="m", fired_at=T0, sequence=1,
    )  # fmt: skip


def silence(**kw: Any) -> Silence:
    kw.setdefault("id", "s1")
    kw.setdefault("starts_at", T0)
    kw.setdefault("ends_at", T0 + timedelta(hours=1))
    return Silence(**kw)


def test_silence_needs_a_target_and_a_bounded_time() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        silence()
    with pytest.raises(ValidationError, match="ends_at"):
        silence(rule_id="r1", ends_at=T0)


@pytest.mark.parametrize(
    ("matcher", "muted"),
    [({"rule_id": "r1"}, True), ({"rule_id": "r2"}, False), ({"owner_id": "rep-1"}, True),
     ({"team": "west"}, True), ({"team": "east"}, False), ({"subject_id": "D-1"}, True),
     ({"rule_id": "r1", "owner_id": "rep-2"}, False)],
)  # fmt: skip
def test_silence_matchers(matcher: dict[str, str], muted: bool) -> None:
    book = SilenceBook()
    book.put(silence(**matcher))
    assert (book.match(alert(1), T0, ORG.team_of) is not None) is muted


def test_silence_expiry_unmutes_and_tombstone_lifts() -> None:
    book = SilenceBook()
    assert book.apply_record(b"s1", silence(rule_id="r1").model_dump_json().encode()) is None
    assert book.match(alert(1), T0 + timedelta(minutes=59), ORG.team_of) is not None
    assert book.match(alert(1), T0 + timedelta(hours=1), ORG.team_of) is None
    assert book.apply_record(b"s1", None) is None
    assert book.all() == []
    assert book.apply_record(b"s2", b'{"id": "s2"}') is not None  # refused, explained


def test_gate_marks_muted_and_held_back_and_digest_summarises() -> None:
    book = SilenceBook()
    book.put(silence(subject_id="D-0"))
    budget = NotificationBudget(per_hour=2)
    gate = Gate(book, budget, ORG)
    alerts = [alert(i, severity="critical" if i == 4 else "warning") for i in range(5)]
    out, counts = gate.apply(alerts, T0 + timedelta(minutes=5))
    assert [(a.notify, a.silenced_by, a.held_back) for a in out] == [
        (False, "s1", False), (True, None, False), (True, None, False),
        (False, None, True), (False, None, True),
    ]  # fmt: skip
    assert counts == {("r1", "silenced"): 1, ("r1", "held_back"): 2}
    # resolutions are never held back
    assert gate.apply([alert(9, status="RESOLVED")], T0 + timedelta(minutes=6))[0][0].notify
    assert budget.digests(T0 + timedelta(minutes=59)) == []
    [digest] = budget.digests(T0 + timedelta(hours=1))
    assert digest.status is AlertStatus.DIGEST and digest.owner_id == "rep-1"
    assert digest.evidence["held"] == 2 and digest.evidence["alert_ids"] == ["a3", "a4"]
    assert digest.severity is Severity.CRITICAL
    assert budget.digests(T0 + timedelta(hours=1)) == []  # one digest only
    # a new hour has a fresh budget
    assert gate.apply([alert(10)], T0 + timedelta(hours=1, minutes=1))[0][0].notify


def test_board_keeps_latest_status_and_filters() -> None:
    board = AlertBoard(keep_resolved=1)
    firing = alert(1).model_dump_json().encode()
    esc = alert(1, status="ESCALATED").model_copy(update={"sequence": 2, "escalated_to": "m"})
    assert board.apply_record(firing)
    assert board.apply_record(esc.model_dump_json().encode())
    assert not board.apply_record(firing)  # older sequence: ignored
    assert [a["status"] for a in board.query(status="firing")] == ["ESCALATED"]
    assert board.query(status="escalated", owner="m")[0]["alert_id"] == "a1"
    closed = alert(1, status="RESOLVED").model_copy(update={"sequence": 3})
    board.apply_record(closed.model_dump_json().encode())
    board.apply_record(alert(2, status="RESOLVED").model_dump_json().encode())
    assert board.query(status="firing") == []
    assert len(board) == 1  # only the newest resolved one kept
    assert not board.apply_record(b"not json")
    with pytest.raises(ValueError, match="status must be"):
        board.query(status="weird")
    assert orjson.loads(orjson.dumps(board.query()))


def test_timer_index_lazy_reschedule() -> None:
    index = TimerIndex()
    index.schedule(b"a", 10.0)
    index.schedule(b"b", 5.0)
    index.schedule(b"a", 20.0)  # moved later: the old entry is stale
    index.schedule(b"c", 1.0)
    index.schedule(b"c", None)  # cleared
    assert index.pop_due(15.0, 10) == [b"b"]
    assert index.pop_due(25.0, 10) == [b"a"]
    assert len(index) == 0 and index.next_due() is None
