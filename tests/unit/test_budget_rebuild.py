"""The notification budget as an event-sourced count over crm.alerts: rebuilt after a
restart, shared by several workers, one decision per (alert_id, sequence), one digest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from streams.alerting.budget import NotificationBudget
from streams.alerting.gate import Gate
from streams.alerting.silences import SilenceBook
from streams.clock import ManualClock
from streams.contracts.alerts import AlertEvent, AlertStatus
from tests.unit.test_notification_gate import ORG, T0, alert


def on_topic(alerts: list[AlertEvent]) -> list[dict[str, Any]]:
    """The alerts as a consumer of crm.alerts reads them."""
    return [orjson.loads(a.model_dump_json()) for a in alerts]


def gated(budget: NotificationBudget, alerts: list[AlertEvent], now: datetime) -> list[Any]:
    out, _ = Gate(SilenceBook(), budget, ORG).apply(alerts, now)
    return out


def test_restart_rebuilds_the_window_from_the_topic_and_digests_once() -> None:
    clock = ManualClock(T0 + timedelta(minutes=10))
    before = NotificationBudget(per_hour=2)
    published = gated(before, [alert(i) for i in range(3)], clock())
    assert [a.held_back for a in published] == [False, False, True]
    # the worker dies; its successor reads crm.alerts from the start
    after = NotificationBudget(per_hour=2)
    for record in on_topic(published):
        after.observe(record, clock())
    assert after.counts("rep-1", clock()) == (2, 1)
    clock.advance(timedelta(minutes=5))
    [next_one] = gated(after, [alert(3)], clock())
    assert next_one.held_back and not next_one.notify  # still over budget after the restart
    assert after.digests(T0 + timedelta(minutes=59)) == []
    [digest] = after.digests(T0 + timedelta(hours=1))
    assert digest.status is AlertStatus.DIGEST and digest.evidence["held"] == 2
    assert digest.evidence["alert_ids"] == ["a2", "a3"]
    assert after.digests(T0 + timedelta(hours=1, minutes=1)) == []
    # the worker that sent the digest dies too: the next one reads it and sends none
    third = NotificationBudget(per_hour=2)
    for record in on_topic([*published, next_one, digest]):
        third.observe(record, clock())
    assert third.digests(T0 + timedelta(hours=1, minutes=2)) == []


def test_reading_back_or_replaying_an_alert_never_counts_twice() -> None:
    budget = NotificationBudget(per_hour=2)
    now = T0 + timedelta(minutes=1)
    first = gated(budget, [alert(1), alert(2)], now)
    for record in on_topic(first):  # its own alerts read back from the topic
        budget.observe(record, now)
    assert budget.counts("rep-1", now) == (2, 0)
    # the batch is replayed after a crash: same ids, same decisions, nothing more counted
    assert [a.notify for a in gated(budget, [alert(1), alert(2)], now)] == [True, True]
    assert [a.held_back for a in gated(budget, [alert(3), alert(3)], now)] == [True, True]
    assert budget.counts("rep-1", now) == (2, 1)


def test_workers_share_the_count_of_an_owner() -> None:
    now = T0 + timedelta(minutes=1)
    a, b = NotificationBudget(per_hour=3), NotificationBudget(per_hour=3)
    from_a = gated(a, [alert(1), alert(2)], now)
    for record in on_topic(from_a):
        b.observe(record, now)
    from_b = gated(b, [alert(3), alert(4, owner="rep-2"), alert(5)], now)
    assert [(x.owner_id, x.notify) for x in from_b] == [
        ("rep-1", True), ("rep-2", True), ("rep-1", False)]  # fmt: skip
    for record in on_topic(from_b):
        a.observe(record, now)
    assert a.counts("rep-1", now) == b.counts("rep-1", now) == (3, 1)
    # only the worker owning rep-1 sends its digest
    end = T0 + timedelta(hours=1)
    assert a.digests(end, owns=lambda owner: owner != "rep-1") == []
    [digest] = b.digests(end, owns=lambda owner: owner == "rep-1")
    assert digest.owner_id == "rep-1" and digest.evidence["alert_ids"] == ["a5"]


def test_windows_grace_silences_and_never_held_statuses() -> None:
    budget = NotificationBudget(per_hour=1, window_s=60.0, grace_s=5.0)
    now = T0 + timedelta(seconds=10)
    muted = {**on_topic([alert(1)])[0], "notify": False, "silenced_by": "s1"}
    budget.observe(muted, now)  # silenced: not part of the budget
    assert budget.counts("rep-1", now) == (0, 0)
    out = gated(budget, [alert(2), alert(3), alert(4, status="RESOLVED"),
                         alert(5, status="ESCALATED")], now)  # fmt: skip
    assert [a.notify for a in out] == [True, False, True, True]
    assert budget.digests(T0 + timedelta(seconds=62)) == []  # ended, within the grace
    [digest] = budget.digests(T0 + timedelta(seconds=65))
    assert digest.evidence["window_end"] == (T0 + timedelta(minutes=1)).isoformat()
    # the next window starts afresh; old windows are forgotten a window later
    assert gated(budget, [alert(6)], T0 + timedelta(seconds=70))[0].notify
    budget.digests(T0 + timedelta(minutes=3))
    assert budget.counts("rep-1", T0 + timedelta(seconds=10)) == (0, 0)


def test_history_older_than_a_window_is_neither_kept_nor_digested() -> None:
    now = T0 + timedelta(hours=5, minutes=1)
    budget = NotificationBudget(per_hour=1)
    old = gated(NotificationBudget(per_hour=1), [alert(1), alert(2)], T0)  # 5 hours ago
    last = gated(NotificationBudget(per_hour=1), [alert(3), alert(4)],
                 T0 + timedelta(hours=4, minutes=30))  # the previous window  # fmt: skip
    for record, at in [
        *((r, T0) for r in on_topic(old)),
        *((r, T0 + timedelta(hours=4, minutes=30)) for r in on_topic(last)),
    ]:
        budget.observe(record, at, now)  # fmt: skip
    assert budget.counts("rep-1", T0) == (0, 0)  # skipped: five hours old
    # the previous window ended without a digest on the topic: it is sent now, once
    [digest] = budget.digests(now)
    assert digest.evidence["alert_ids"] == ["a4"]
    assert budget.digests(now + timedelta(hours=1)) == []
