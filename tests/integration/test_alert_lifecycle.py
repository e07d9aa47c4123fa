"""Alert lifecycle on the real broker: reminders, escalation, resolve, silences, budget,
``GET /alerts``, and a SIGKILL in the middle of an episode."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.alerting_helpers import by, now_event, write_rules
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.kafka_io import consume_until, produce, read_all, values

LIFECYCLE_RULES: list[dict[str, Any]] = [
    {
        "id": "neg-amount",
        "type": "condition",
        "condition": "deal.amount <= 0.0",
        "severity": "critical",
        "realert": {"every": "PT1S"},
        "escalate_after": 2,
        "message": "Deal {subject.id} has amount {deal.amount}",
    },
]


def http(worker: WorkerProcess, method: str, path: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any]:  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(worker.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def board_until(
    worker: WorkerProcess, path: str, subjects: set[str], timeout: float = 20.0
) -> dict[str, Any]:
    """GET ``path`` until its alerts are about ``subjects`` (or the timeout); last answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, board = http(worker, "GET", path)
        assert status == 200, board
        got = {a["subject"]["id"] for a in board["alerts"]}
        if got == subjects or time.monotonic() > deadline:
            return dict(board)
        await asyncio.sleep(0.3)


async def wait_alerts(s: Any, done: Any, timeout: float = 40.0) -> list[dict[str, Any]]:
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: done(values(r)), timeout=timeout
    )
    return values(records)


async def test_reminders_escalation_silences_budget_and_board(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", LIFECYCLE_RULES)
    org = tmp_path / "org.csv"
    org.write_text("owner_id,manager_id,team,region,timezone\nrep-001,mgr-9,west,West,UTC\n")
    worker = worker_factory(
        rules_dir=str(rules), org_directory_file=str(org), notify_budget_per_hour="3"
    )
    s = worker.settings
    token = s.api_token.get_secret_value() if s.api_token else ""
    # writes need the token
    status, _ = http(worker, "POST", "/silences", {"subject_id": "D-muted", "duration": "PT1H"})
    assert status == 401
    status, bad = http(worker, "POST", "/silences", {"duration": "PT1H"}, token=token)
    assert status == 422, bad
    status, created = http(worker, "POST", "/silences",
                           {"subject_id": "D-muted", "duration": "PT1H"}, token=token)  # fmt: skip
    assert status == 201, created
    status, brief = http(worker, "POST", "/silences",
                         {"subject_id": "D-brief", "duration": "PT2S"}, token=token)  # fmt: skip
    assert status == 201, brief
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-esc", "create", stage="Proposal", amount=0.0),
        now_event("D-muted", "create", stage="Proposal", amount=0.0),
        now_event("D-brief", "create", owner="rep-002", stage="Proposal", amount=0.0),
        *[now_event(f"D-busy-{i}", "create", owner="rep-busy", stage="Proposal", amount=0.0)
          for i in range(4)],
    ])  # fmt: skip

    def escalated(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "neg-amount", "D-esc", "ESCALATED"))

    alerts = await wait_alerts(s, escalated)
    assert escalated(alerts), (alerts, worker.log_tail())
    episode = sorted(by(alerts, "neg-amount", "D-esc"), key=lambda a: a["sequence"])
    statuses = [a["status"] for a in episode]
    assert statuses[:4] == ["FIRING", "REMINDER", "REMINDER", "ESCALATED"], statuses
    assert [a["sequence"] for a in episode[:4]] == [1, 2, 3, 4]
    assert len({a["alert_id"] for a in episode}) == 1
    assert episode[3]["escalated_to"] == "mgr-9"
    # silenced: recorded with notify false, counted
    muted = by(alerts, "neg-amount", "D-muted", "FIRING")
    assert muted and muted[0]["notify"] is False and muted[0]["silenced_by"] == created["id"]
    # budget: 3 notifications per hour for rep-busy, the rest recorded as held back
    # (escalations go to the manager and resolutions close what was said: never held)
    busy = [a for a in alerts
            if a["owner_id"] == "rep-busy" and a["status"] in ("FIRING", "REMINDER")]  # fmt: skip
    assert sum(1 for a in busy if a["notify"]) == 3, busy
    assert all(a["held_back"] for a in busy if not a["notify"])
    assert any(a["held_back"] for a in busy)
    metrics = worker.http_text("/metrics")
    assert 'crm_pulse_alerts_muted_total{reason="silenced",rule="neg-amount"}' in metrics
    assert 'crm_pulse_alerts_muted_total{reason="held_back",rule="neg-amount"}' in metrics
    # the board answers GET /alerts by status and owner (escalations reach the manager)
    # (the board reads crm.alerts on its own: it converges shortly after the topic)
    board = await board_until(worker, "/alerts?status=firing&owner=rep-001", {"D-esc", "D-muted"})
    assert {a["subject"]["id"] for a in board["alerts"]} == {"D-esc", "D-muted"}
    board = await board_until(worker, "/alerts?status=escalated&owner=mgr-9", {"D-esc", "D-muted"})
    assert {a["subject"]["id"] for a in board["alerts"]} == {"D-esc", "D-muted"}
    assert {a["escalated_to"] for a in board["alerts"]} == {"mgr-9"}
    assert http(worker, "GET", "/alerts?status=nonsense")[0] == 400
    brief_firing = by(alerts, "neg-amount", "D-brief", "FIRING")
    assert brief_firing and brief_firing[0]["silenced_by"] == brief["id"]
    # the brief silence expires: the reminders of the same episode are notified again
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-esc", "update", amount=10.0),
    ])  # fmt: skip
    expiry = datetime.fromisoformat(brief["ends_at"])

    def settled(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "neg-amount", "D-esc", "RESOLVED")) and any(
            a["notify"] for a in by(alerts, "neg-amount", "D-brief", "REMINDER")
        )

    alerts = await wait_alerts(s, settled)
    assert settled(alerts), (alerts, worker.log_tail())
    for reminder in by(alerts, "neg-amount", "D-brief", "REMINDER"):
        # muted while the silence held, notified after it expired
        assert reminder["notify"] is (reminder["silenced_by"] is None)
    assert any(a["notify"] for a in by(alerts, "neg-amount", "D-brief", "REMINDER"))
    assert datetime.now(UTC) >= expiry
    resolved = by(alerts, "neg-amount", "D-esc", "RESOLVED")[0]
    before = by(alerts, "neg-amount", "D-esc")
    last = max(a["sequence"] for a in before if a["status"] != "RESOLVED")
    assert resolved["sequence"] > last
    assert resolved["alert_id"] == episode[0]["alert_id"]
    # DELETE lifts a silence
    assert http(worker, "DELETE", f"/silences/{created['id']}", token=token)[0] == 200
    status, listed = http(worker, "GET", "/silences")
    assert created["id"] not in {x["id"] for x in listed["silences"]}


IDLE_RULES: list[dict[str, Any]] = [
    {
        "id": "idle-crash",
        "type": "inactivity",
        "after": "PT6S",
        "activity_fields": ["stage"],
        "realert": {"every": "PT2S"},
        "message": "{subject.id} idle since {evidence.idle_since}",
    },
]


async def test_sigkill_mid_episode_no_duplicate_firing_no_lost_resolved(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", IDLE_RULES)
    first = worker_factory(rules_dir=str(rules))
    s = first.settings
    created_at = datetime.now(UTC)
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-crash", "create", stage="Proposal", amount=5.0, at=created_at),
    ])  # fmt: skip
    # let the state reach the changelog, then crash before the timer is due
    for _ in range(50):
        if 'crm_pulse_events_total{entity="deal",op="create",source="test"} 1.0' in (
            first.http_text("/metrics")
        ):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    first.kill()
    second = worker_factory(rules_dir=str(rules))
    due = created_at + timedelta(seconds=6)
    alerts = await wait_alerts(s, lambda a: bool(by(a, "idle-crash", "D-crash", "REMINDER")))
    firing = by(alerts, "idle-crash", "D-crash", "FIRING")
    assert firing, (alerts, second.log_tail())
    fired_at = datetime.fromisoformat(firing[0]["fired_at"])
    # the timer survived the crash and fired on time (tick 1 s, restart included)
    assert due <= fired_at <= due + timedelta(seconds=5), (fired_at, due)
    # crash again in the middle of the open episode, then end it on a third worker
    second.kill()
    third = worker_factory(rules_dir=str(rules))
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-crash", "update", stage="Negotiation"),
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: bool(by(a, "idle-crash", "D-crash", "RESOLVED")))
    assert by(alerts, "idle-crash", "D-crash", "RESOLVED"), third.log_tail()
    everything = values(await read_all(s.bootstrap_servers, s.alerts_topic, settle=2.0))
    mine = by(everything, "idle-crash", "D-crash")
    # one episode only: a single alert_id, FIRING once per (alert_id, sequence)
    assert len({a["alert_id"] for a in mine}) == 1, mine
    firing_keys = {(a["alert_id"], a["sequence"]) for a in mine if a["status"] == "FIRING"}
    assert len(firing_keys) == 1, mine
    resolved = [a for a in mine if a["status"] == "RESOLVED"]
    assert resolved and resolved[0]["sequence"] == max(a["sequence"] for a in mine)


async def test_timers_move_with_their_partitions_on_rebalance(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", [
        {"id": "idle-rebalance", "type": "inactivity", "after": "PT12S",
         "message": "{subject.id} idle"},
    ])  # fmt: skip
    a = worker_factory(rules_dir=str(rules), session_timeout_s="6")
    b = worker_factory(rules_dir=str(rules), session_timeout_s="6")
    s = a.settings

    def owns_input(worker: WorkerProcess) -> bool:
        try:
            ready = json.loads(worker.http_text("/ready"))
        except urllib.error.HTTPError:  # 503 while rebalancing
            return False
        return any(tp.startswith(f"{s.events_topic}:") for tp in ready["assigned"])

    deadline = time.monotonic() + 60
    while not (owns_input(a) and owns_input(b)) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)  # the join of the second worker rebalances the partitions
    assert owns_input(a) and owns_input(b), (a.log_tail(), b.log_tail())
    deals = [f"D-rb-{i}" for i in range(8)]
    created_at = datetime.now(UTC)
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event(d, "create", stage="Proposal", at=created_at) for d in deals
    ])  # fmt: skip

    def processed(worker: WorkerProcess) -> float:
        for line in worker.http_text("/metrics").splitlines():
            if line.startswith('crm_pulse_events_total{entity="deal",op="create"'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    for _ in range(100):
        if processed(a) + processed(b) >= len(deals):
            break
        await asyncio.sleep(0.1)
    assert processed(a) > 0 and processed(b) > 0, "both workers should own a partition"
    await asyncio.sleep(1.0)  # the states reach the changelog
    a.kill()  # its timers now live only in the changelog: b must take them over

    def all_fired(alerts: list[dict[str, Any]]) -> bool:
        return all(by(alerts, "idle-rebalance", d, "FIRING") for d in deals)

    alerts = await wait_alerts(s, all_fired, timeout=60)
    assert all_fired(alerts), b.log_tail()
    due = created_at + timedelta(seconds=12)
    for d in deals:
        firing = by(alerts, "idle-rebalance", d, "FIRING")
        assert len({x["alert_id"] for x in firing}) == 1, firing
        fired_at = datetime.fromisoformat(firing[0]["fired_at"])
        # on time: not before the deadline, late at most by the failover (session timeout)
        assert due <= fired_at <= due + timedelta(seconds=15), (d, fired_at, due)


async def test_budget_survives_a_sigkill_and_digests_once(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", [{
        "id": "zero-amount", "type": "condition", "condition": "deal.amount <= 0.0",
        "message": "{subject.id} has amount {deal.amount}",
    }])  # fmt: skip
    window = 60.0
    env = {"rules_dir": str(rules), "notify_budget_per_hour": "2",
           "notify_budget_window_s": str(window), "session_timeout_s": "6"}  # fmt: skip
    first = worker_factory(**env)
    s = first.settings
    left = window - time.time() % window
    if left < 45.0:  # room in this window for the alerts, a crash and a restart
        await asyncio.sleep(left + 0.5)
    start = datetime.fromtimestamp(int(time.time() // window * window), tz=UTC)
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event(f"D-b{i}", "create", owner="rep-b", stage="Proposal", amount=0.0)
        for i in range(3)
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: len(by(a, "zero-amount")) == 3)
    before = by(alerts, "zero-amount")
    assert len(before) == 3, (alerts, first.log_tail())
    assert sorted(a["notify"] for a in before) == [False, True, True]
    [held] = [a for a in before if a["held_back"]]
    first.kill()  # the in-memory counts die with it
    second = worker_factory(**env)
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-b3", "create", owner="rep-b", stage="Proposal", amount=0.0),
        now_event("D-c0", "create", owner="rep-c", stage="Proposal", amount=0.0),
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: bool(by(a, "zero-amount", "D-b3"))
                               and bool(by(a, "zero-amount", "D-c0")))  # fmt: skip
    [after] = {a["sequence"]: a for a in by(alerts, "zero-amount", "D-b3")}.values()
    assert after["held_back"] and not after["notify"], (after, second.log_tail())
    assert by(alerts, "zero-amount", "D-c0")[0]["notify"]  # another owner: its own budget
    assert time.time() < start.timestamp() + window, "the restart left the window"
    # the window ends: one digest for rep-b, listing what both workers held back
    alerts = await wait_alerts(s, lambda a: bool(by(a, "crm-pulse.digest")),
                               timeout=window + 30.0)  # fmt: skip
    everything = values(await read_all(s.bootstrap_servers, s.alerts_topic, settle=3.0))
    digests = by(everything, "crm-pulse.digest")
    assert len(digests) == 1, (digests, second.log_tail())
    digest = digests[0]
    assert digest["owner_id"] == "rep-b" and digest["status"] == "DIGEST"
    assert digest["evidence"]["held"] == 2
    assert set(digest["evidence"]["alert_ids"]) == {held["alert_id"], after["alert_id"]}
    assert digest["evidence"]["window_start"] == start.isoformat()
