"""The notifier against a real Kafka, a real Alertmanager and a local receiver."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.notify.signing import verify
from streams.runtime.broker import LocalKafka
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.integration.conftest import run_sync
from tests.integration.kafka_io import consume_until, produce
from tests.integration.notify_helpers import (
    ORG_YAML,
    Alertmanager,
    Notifier,
    Receiver,
    alert_json,
    am_notifications,
)

SECRET = "test-secret-0123456789"


class Env:
    def __init__(self, kafka: LocalKafka, tmp_path: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        (tmp_path / "org.yaml").write_text(ORG_YAML)
        self.tmp = tmp_path
        self.env = {
            "CRM_PULSE_BROKER": f"kafka://{kafka.bootstrap}",
            "CRM_PULSE_APP_ID": f"crm-pulse-test-{suffix}",
            "CRM_PULSE_TOPIC_PREFIX": f"t{suffix}",
            "CRM_PULSE_TOPIC_PARTITIONS": "2",
            "CRM_PULSE_ORG_DIRECTORY_FILE": str(tmp_path / "org.yaml"),
            "CRM_PULSE_NOTIFY_BACKOFF_S": "0.2",
            "CRM_PULSE_NOTIFY_BACKOFF_CAP_S": "1",
            "CRM_PULSE_NOTIFY_MAX_ATTEMPTS": "3",
            "CRM_PULSE_LOG_LEVEL": "info",
        }
        self.settings = Settings(
            broker=self.env["CRM_PULSE_BROKER"], topic_prefix=self.env["CRM_PULSE_TOPIC_PREFIX"],
            topic_partitions=2,
        )  # fmt: skip
        run_sync(ensure_topics(self.settings))
        self.bootstrap = kafka.bootstrap
        self.notifiers: list[Notifier] = []

    def notifier(self, **env: str) -> Notifier:
        merged = dict(self.env)
        merged.update({f"CRM_PULSE_{k.upper()}": v for k, v in env.items()})
        n = Notifier(merged, self.tmp / f"notifier-{len(self.notifiers)}.log").start()
        self.notifiers.append(n)
        return n

    def publish(self, *alerts: tuple[bytes, bytes]) -> None:
        run_sync(produce(self.bootstrap, self.settings.alerts_topic, alerts))


@pytest.fixture
def env(kafka: LocalKafka, tmp_path: Path) -> Iterator[Env]:
    e = Env(kafka, tmp_path)
    yield e
    for n in e.notifiers:
        n.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def alertmanager(receiver: Receiver, tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path, receiver.url).start()
    yield am
    am.stop()


def test_alertmanager_routes_owner_then_manager_then_resolved_and_mutes_silenced(
    env: Env, receiver: Receiver, alertmanager: Alertmanager
) -> None:
    n = env.notifier(alertmanager_url=f"{alertmanager.url},http://127.0.0.1:9")  # HA pair, one down
    env.publish(alert_json("a-1", "FIRING", 1, "D-1"))
    got = receiver.wait_for(lambda rs: any(
        p == "/team/west-1" and s == "firing" and lab["subject_id"] == "D-1"
        for p, s, lab in am_notifications(rs)), timeout=60)  # fmt: skip
    [(_, _, labels)] = [x for x in am_notifications(got) if x[0] == "/team/west-1"]
    assert labels["alertname"] == "deal-stage-backwards" and labels["owner"] == "rep-1"
    assert labels["region"] == "West" and labels["status"] == "firing" and "manager" not in labels

    env.publish(alert_json("a-1", "ESCALATED", 2, "D-1", escalated_to="mgr-1"))
    receiver.wait_for(lambda rs: any(
        p == "/manager/mgr-1" and s == "firing" and lab.get("manager") == "mgr-1"
        for p, s, lab in am_notifications(rs)), timeout=60)  # fmt: skip

    env.publish(
        alert_json("a-2", "FIRING", 1, "D-2", notify=False, silenced_by="s-1"),  # silenced
        alert_json(
            "a-1",
            "RESOLVED",
            3,
            "D-1",
            escalated_to="mgr-1",
            resolved_at=datetime.now(UTC).isoformat(),
        ),
        alert_json("a-3", "FIRING", 1, "D-3", owner="rep-2"),  # comes after the silenced one
    )
    got = receiver.wait_for(lambda rs: any(
        p == "/manager/mgr-1" and s == "resolved" for p, s, _ in am_notifications(rs)
    ) and any(p == "/team/east-1" for p, _, _ in am_notifications(rs)), timeout=60)  # fmt: skip
    assert all(lab["subject_id"] != "D-2" for _, _, lab in am_notifications(got)), "silenced"
    assert all(a["labels"]["subject_id"] != "D-2" for a in alertmanager.alerts())
    assert n.proc is not None and n.proc.poll() is None, n.log_tail()


def test_restart_reposts_open_episodes_from_the_alert_log(
    env: Env, receiver: Receiver, alertmanager: Alertmanager, tmp_path: Path
) -> None:
    """A new Alertmanager (state lost) gets every open episode again after a notifier restart,
    and a resolved one is not re-opened."""
    n = env.notifier(alertmanager_url=alertmanager.url)
    env.publish(
        alert_json("o-1", "FIRING", 1, "D-10"),
        alert_json("o-2", "FIRING", 1, "D-11"),
    )
    # Alertmanager sends a resolved notification only for an alert it notified as firing.
    receiver.wait_for(lambda rs: len(am_notifications(rs)) >= 2, 60)
    env.publish(alert_json("o-2", "RESOLVED", 2, "D-11"))
    receiver.wait_for(lambda rs: any(s == "resolved" for _, s, _ in am_notifications(rs)), 60)
    n.stop()
    alertmanager.stop()
    fresh = Alertmanager(tmp_path / "am2", receiver.url)
    fresh.work.mkdir()
    fresh.start()
    try:
        assert fresh.alerts() == []
        env.notifier(alertmanager_url=fresh.url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not fresh.alerts():
            time.sleep(0.3)
        alerts = fresh.alerts()
        assert [a["labels"]["subject_id"] for a in alerts] == ["D-10"]
        assert alerts[0]["status"]["state"] == "active"
    finally:
        fresh.stop()


def webhooks_file(tmp: Path, receiver: Receiver, down_port: int) -> Path:
    path = tmp / "webhooks.yaml"
    path.write_text(
        "webhooks:\n"
        f"  - {{name: flaky, url: '{receiver.url}/flaky', secret: '{SECRET}'}}\n"
        f"  - {{name: slow, url: '{receiver.url}/slow', secret: '{SECRET}', timeout_s: 5}}\n"
        f"  - {{name: down, url: 'http://127.0.0.1:{down_port}/x', secret: '{SECRET}',\n"
        "     statuses: [ESCALATED]}\n"
    )
    return path


def test_webhooks_retry_sign_and_dead_letter_after_the_last_attempt(
    env: Env, receiver: Receiver
) -> None:
    from streams.runtime.broker import free_port

    receiver.fail_first["/flaky"] = 2  # 2 x 503, then 200 (max attempts 3)
    receiver.delay_s["/slow"] = 1.0
    env.notifier(webhooks_file=str(webhooks_file(env.tmp, receiver, free_port())))
    env.publish(
        alert_json("w-1", "FIRING", 1, "D-20"),
        alert_json("w-1", "ESCALATED", 2, "D-20", escalated_to="mgr-1"),
        alert_json("w-9", "FIRING", 1, "D-29", notify=False),
    )
    got = receiver.wait_for(
        lambda rs: (
            sum(r.path == "/flaky" for r in rs) == 2 and sum(r.path == "/slow" for r in rs) == 2
        ),
        timeout=60,
    )
    assert receiver.attempts["/flaky"] == 2 + 2  # two failures, then each alert once
    now = time.time()
    for r in got:
        assert verify(
            SECRET,
            r.headers["X-CRM-Pulse-Timestamp"],
            r.body,
            r.headers["X-CRM-Pulse-Signature"],
            now,
        ), r.headers
        assert json.loads(r.body)["alert_id"] != "w-9"
    assert [json.loads(r.body)["sequence"] for r in got if r.path == "/flaky"] == [1, 2]

    dlq = run_sync(consume_until(env.bootstrap, env.settings.notify_dlq_topic,
                                 lambda rs: len(rs) >= 1, timeout=60))  # fmt: skip
    [dead] = dlq
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["crm-pulse-reason"] == "notify_failed" and headers["crm-pulse-target"] == "down"
    assert "after 3 attempt(s)" in headers["crm-pulse-error"]
    assert json.loads(dead.value)["status"] == "ESCALATED"


def test_kill_9_mid_delivery_loses_nothing(env: Env, receiver: Receiver) -> None:
    import threading

    path = env.tmp / "hooks.yaml"
    path.write_text(
        f"webhooks:\n  - {{name: hold, url: '{receiver.url}/hold', secret: '{SECRET}'}}\n"
    )
    gate = threading.Event()
    receiver.hold = gate  # the first request hangs: the notifier is killed while it waits
    n = env.notifier(webhooks_file=str(path))
    ids = [f"k-{i}" for i in range(20)]
    env.publish(*(alert_json(i, "FIRING", 1, f"D-{i}") for i in ids))
    deadline = time.monotonic() + 60
    while receiver.hold is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.hold is None, "no delivery started:\n" + n.log_tail()
    held = json.loads(receiver.held.body)["alert_id"]
    n.stop(sig=9)
    gate.set()
    env.notifier(webhooks_file=str(path))
    got = receiver.wait_for(
        lambda rs: {json.loads(r.body)["alert_id"] for r in rs} >= set(ids), timeout=90
    )
    delivered = [json.loads(r.body)["alert_id"] for r in got]
    assert held in delivered  # the one in flight at the kill came again after the restart
    assert set(delivered) == set(ids)


def test_worker_notifier_stage_regression_and_escalation_reach_people(
    worker_factory: Any, receiver: Receiver, alertmanager: Alertmanager, tmp_path: Path
) -> None:
    """The real engine in a worker with CRM_PULSE_NOTIFY_ENABLED: a stage regression reaches
    the owner's team; an escalated episode reaches the manager, then its resolution."""
    from tests.integration.alerting_helpers import now_event, write_rules

    rules = write_rules(tmp_path / "rules", [
        {"id": "deal-stage-backwards", "type": "transition", "severity": "warning",
         "applies_to": {"entity": "deal"}, "field": "stage", "change": "backwards",
         "order": ["Prospecting", "Qualification", "Proposal", "Negotiation", "Won"],
         "message": "Deal {subject.id} moved back to {evidence.new}"},
        {"id": "neg-amount", "type": "condition", "condition": "deal.amount <= 0.0",
         "applies_to": {"entity": "deal"}, "severity": "critical",
         "realert": {"every": "PT1S"}, "escalate_after": 1,
         "message": "Deal {subject.id} has amount {deal.amount}"},
    ])  # fmt: skip
    org = tmp_path / "org.yaml"
    org.write_text("owners:\n  rep-001: {manager: mgr-1, team: west-1, region: West}\n")
    worker = worker_factory(
        rules_dir=str(rules), org_directory_file=str(org), notify_enabled="true",
        alertmanager_url=alertmanager.url,
    )  # fmt: skip
    s = worker.settings
    run_sync(produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-back", "create", stage="Proposal", amount=10.0),
        now_event("D-back", "update", stage="Qualification"),
        now_event("D-neg", "create", stage="Proposal", amount=0.0),
    ]))  # fmt: skip

    def seen(rs: list[Any], path: str, subject: str, status: str) -> bool:
        return any(p == path and st == status and lab["subject_id"] == subject
                   for p, st, lab in am_notifications(rs))  # fmt: skip

    def both(rs: list[Any]) -> bool:
        return seen(rs, "/team/west-1", "D-back", "firing") and seen(
            rs, "/manager/mgr-1", "D-neg", "firing"
        )

    got = receiver.wait_for(both, timeout=90)
    [back] = [lab for p, st, lab in am_notifications(got) if lab["subject_id"] == "D-back"]
    assert back["alertname"] == "deal-stage-backwards" and back["owner"] == "rep-001"
    run_sync(produce(s.bootstrap_servers, s.events_topic,
                     [now_event("D-neg", "update", amount=5.0)]))  # fmt: skip
    receiver.wait_for(lambda rs: seen(rs, "/manager/mgr-1", "D-neg", "resolved"), timeout=90)
    assert "notifier started" in worker.log_tail(400)
