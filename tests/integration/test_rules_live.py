"""Live rules on a real broker, one worker running all along: apply, edit, delete, refuse
invalid rules (CLI, HTTP and a bad topic record), isolate a raising rule, guard the API
with a token, and `rules test` agreeing with the live worker."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from streams.simulator import DealSimulator
from tests.integration.conftest import REPO, WorkerFactory, WorkerProcess
from tests.integration.kafka_io import consume_until, event_bytes, produce, read_all, values

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

RULE_V1 = """
rules:
  - id: test-big-deal
    version: 1
    type: condition
    description: Deal above a threshold.
    severity: warning
    condition: 'type(deal.amount) == double && deal.amount > {threshold}'
    message: "Deal {{subject.id}} has amount {{deal.amount}}"
"""


def rule_text(threshold: str = "1000.0") -> str:
    return RULE_V1.format(threshold=threshold)


def deal_event(deal_id: str, op: str, minutes: int = 0, **fields: Any) -> tuple[bytes, bytes]:
    return event_bytes(
        event_id=str(uuid.uuid4()), source="test", entity="deal", entity_id=deal_id, op=op,
        occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(), owner_id="rep-001",
        fields=fields,
    )  # fmt: skip


def cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "rules", *args],
        env=worker.env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def http(
    worker: WorkerProcess, method: str, path: str, body: str | None = None,
    token: str | None = "default",
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = {"Content-Type": "application/json"}
    if token == "default":
        token = worker.env["CRM_PULSE_API_TOKEN"]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        worker.url + path, method=method, headers=headers,
        data=body.encode() if body is not None else None,
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return int(resp.status), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def metric(worker: WorkerProcess, name: str) -> float:
    for line in worker.http_text("/metrics").splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            if series == name:
                return float(value)
    return 0.0


def alerts_of_list(alerts: list[dict[str, Any]], rule_id: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule_id"] == rule_id]


def alerts_of(records: list[Any], rule_id: str) -> list[dict[str, Any]]:
    return [a for a in values(records) if a["rule_id"] == rule_id]


async def fire_until_alert(
    worker: WorkerProcess, rule_id: str, amount: float, timeout: float
) -> tuple[float, dict[str, Any] | None]:
    """Send a matching event every 0.25 s until an alert of ``rule_id`` shows; returns the
    seconds it took and that alert."""
    s = worker.settings
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < timeout:
        n += 1
        await produce(s.bootstrap_servers, s.events_topic,
                      [deal_event(f"P-{n}", "create", name="probe", amount=amount)])  # fmt: skip
        records = await consume_until(
            s.bootstrap_servers, s.alerts_topic, lambda r: bool(alerts_of(list(r), rule_id)),
            timeout=0.25,
        )  # fmt: skip
        found = alerts_of(records, rule_id)
        if found:
            return time.monotonic() - start, found[0]
    return time.monotonic() - start, None


def live_version(worker: WorkerProcess, rule_id: str) -> int | None:
    status, body = http(worker, "GET", f"/rules/{rule_id}")
    return int(body["version"]) if status == 200 else None


async def wait_version(worker: WorkerProcess, rule_id: str, version: int | None) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if live_version(worker, rule_id) == version:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_apply_edit_delete_without_restart(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory()
    s = worker.settings
    pid = worker.proc.pid if worker.proc else None
    folder = tmp_path / "rules"
    shutil.copytree(REPO / "rules", folder)
    (folder / "test.yaml").write_text(rule_text("1000.0"))

    applied = cli(worker, "apply", str(folder))
    assert applied.returncode == 0, applied.stderr
    assert "added      test-big-deal" in applied.stdout
    assert "unchanged  deal-stage-backwards" in applied.stdout
    took, alert = await fire_until_alert(worker, "test-big-deal", 5000.0, timeout=10)
    assert alert is not None, worker.log_tail()
    assert took < 5.0
    print(f"apply -> first alert of the new rule: {took:.2f} s")
    # numbers are doubles and render with thousands separators
    assert alert["message"] == f"Deal {alert['subject']['id']} has amount 5,000"
    assert alert["rule_version"] == 1

    # edit the threshold: 5,000 no longer fires, 200,000 does
    (folder / "test.yaml").write_text(rule_text("100000.0"))
    edited = cli(worker, "apply", str(folder))
    assert edited.returncode == 0, edited.stderr
    assert "changed    test-big-deal (version 1 -> 2)" in edited.stdout
    assert await wait_version(worker, "test-big-deal", 2)
    await produce(s.bootstrap_servers, s.events_topic, [
        deal_event("E-small", "create", name="small", amount=5000.0),
        deal_event("E-big", "create", name="big", amount=200000.0),
    ])  # fmt: skip
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic,
        lambda r: any(a["subject"]["id"] == "E-big" for a in values(r)), timeout=15,
    )  # fmt: skip
    everything = values(await read_all(s.bootstrap_servers, s.alerts_topic, settle=1.5))
    big = [a for a in alerts_of_list(everything, "test-big-deal") if a["subject"]["id"] == "E-big"]
    assert len(big) == 1 and big[0]["rule_version"] == 2, (records, worker.log_tail())
    assert not [a for a in everything if a["subject"]["id"] == "E-small"]

    # delete (apply --prune without the file): the rule stops firing
    (folder / "test.yaml").unlink()
    pruned = cli(worker, "apply", "--prune", str(folder))
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted    test-big-deal" in pruned.stdout
    assert await wait_version(worker, "test-big-deal", None)
    await produce(s.bootstrap_servers, s.events_topic, [
        deal_event("E-gone", "create", name="gone", amount=900000.0, stage="Negotiation"),
    ])  # fmt: skip
    # E-gone lacks next_step: the starter pack fires on it, proving the event was handled
    await consume_until(
        s.bootstrap_servers, s.alerts_topic,
        lambda r: any(a["subject"]["id"] == "E-gone" for a in values(r)), timeout=15,
    )  # fmt: skip
    everything = values(await read_all(s.bootstrap_servers, s.alerts_topic, settle=1.5))
    gone = {a["rule_id"] for a in everything if a["subject"]["id"] == "E-gone"}
    assert "deal-late-stage-missing-amount-or-next-step" in gone
    assert "test-big-deal" not in gone
    assert worker.proc is not None and worker.proc.pid == pid and worker.proc.poll() is None
    assert metric(worker, "crm_pulse_rules_live") == 23.0


async def test_invalid_rule_is_refused_and_previous_version_keeps_firing(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory()
    s = worker.settings
    good = tmp_path / "good.yaml"
    good.write_text(rule_text("1000.0"))
    assert cli(worker, "apply", str(good)).returncode == 0
    assert await wait_version(worker, "test-big-deal", 1)

    # CLI: a broken condition is refused with file, line and field; nothing is published
    bad = tmp_path / "bad.yaml"
    bad.write_text(rule_text("1000.0").replace("version: 1", "version: 2").replace(
        "deal.amount > 1000.0", "deal.amount >"))  # fmt: skip
    before = len(await read_all(s.bootstrap_servers, s.rules_topic, settle=0.5))
    refused = cli(worker, "apply", str(bad))
    assert refused.returncode == 1
    assert f"{bad}:8: rule 'test-big-deal' field 'condition'" in refused.stderr
    assert "nothing applied" in refused.stderr

    # HTTP: 422 with the field
    body = orjson.dumps({
        "id": "test-big-deal", "version": 3, "type": "condition", "severity": "urgent",
        "condition": "deal.amount > 1.0", "message": "x",
    }).decode()  # fmt: skip
    status, answer = http(worker, "PUT", "/rules/test-big-deal", body)
    assert status == 422, answer
    assert {"field": "severity"}.items() <= answer["problems"][0].items()
    assert len(await read_all(s.bootstrap_servers, s.rules_topic, settle=0.5)) == before

    # a bad record that lands on the topic anyway is rejected by the worker
    await produce(s.bootstrap_servers, s.rules_topic, [
        (b"test-big-deal", b'{"id": "test-big-deal", "type": "condition", "condition": ")("}'),
    ])  # fmt: skip
    deadline = time.monotonic() + 10
    while metric(worker, 'crm_pulse_rule_reloads_total{result="rejected"}') < 1:
        assert time.monotonic() < deadline, worker.log_tail()
        await asyncio.sleep(0.2)
    assert live_version(worker, "test-big-deal") == 1

    # version 1 still fires
    await produce(s.bootstrap_servers, s.events_topic,
                  [deal_event("V-1", "create", name="still", amount=5000.0)])  # fmt: skip
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: bool(alerts_of(list(r), "test-big-deal")),
        timeout=15,
    )  # fmt: skip
    fired = alerts_of(records, "test-big-deal")
    assert [(a["subject"]["id"], a["rule_version"]) for a in fired] == [("V-1", 1)]
    assert "rule test-big-deal refused" in worker.log_tail(400)


async def test_http_put_get_delete_and_token(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    s = worker.settings
    body = orjson.dumps({
        "id": "test-http", "type": "condition", "condition": "deal.amount > 10.0",
        "message": "amount {deal.amount}",
    }).decode()  # fmt: skip
    before = len(await read_all(s.bootstrap_servers, s.rules_topic, settle=0.5))
    for token in (None, "wrong-token", worker.env["CRM_PULSE_API_TOKEN"] + "x"):
        for method, path, data in (
            ("PUT", "/rules/test-http", body),
            ("DELETE", "/rules/deal-stage-backwards", None),
            ("GET", "/rules", None),
        ):
            status, _ = http(worker, method, path, data, token=token)
            assert status == 401, (method, token)
    assert len(await read_all(s.bootstrap_servers, s.rules_topic, settle=0.5)) == before
    assert live_version(worker, "deal-stage-backwards") == 1
    assert live_version(worker, "test-http") is None

    status, answer = http(worker, "PUT", "/rules/test-http", body)
    assert (status, answer["result"], answer["live"]) == (201, "added", True)
    status, answer = http(worker, "PUT", "/rules/test-http", body)
    assert (status, answer["result"]) == (200, "unchanged")
    status, listing = http(worker, "GET", "/rules")
    assert "test-http" in {r["id"] for r in listing["rules"]}
    status, answer = http(worker, "DELETE", "/rules/test-http")
    assert (status, answer["result"]) == (200, "deleted")
    assert live_version(worker, "test-http") is None
    status, _ = http(worker, "DELETE", "/rules/test-http")
    assert status == 404


async def test_raising_rule_is_isolated(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    worker = worker_factory()
    s = worker.settings
    raising = tmp_path / "raising.yaml"
    # on a text amount, `deal.amount * 2.0` is a CEL type error
    raising.write_text(
        rule_text("1000.0").replace(
            "type(deal.amount) == double && deal.amount > 1000.0", "deal.amount * 2.0 > 2000.0"
        )
    )
    assert cli(worker, "apply", str(raising)).returncode == 0
    assert await wait_version(worker, "test-big-deal", 1)
    await produce(s.bootstrap_servers, s.events_topic, [
        deal_event("R-1", "create", name="dirty", amount="n/a", stage="Negotiation"),
        deal_event("R-2", "create", name="clean", amount=5000.0, next_step="call"),
    ])  # fmt: skip
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic,
        lambda r: {"R-1", "R-2"} <= {a["subject"]["id"] for a in values(r)}, timeout=20,
    )  # fmt: skip
    got = {(a["subject"]["id"], a["rule_id"]) for a in values(records)}
    # the other rules still ran on the dirty record, the raising rule on the clean one
    assert ("R-1", "deal-amount-not-a-number") in got, worker.log_tail()
    assert ("R-1", "deal-late-stage-missing-amount-or-next-step") in got  # no next_step
    assert ("R-2", "test-big-deal") in got
    assert ("R-1", "test-big-deal") not in got
    assert metric(worker, 'crm_pulse_rule_errors_total{rule="test-big-deal"}') == 1.0
    assert "rule test-big-deal raised on deal R-1" in worker.log_tail(400)
    assert worker.http_status("/ready") == 200


async def test_rules_test_matches_the_live_worker(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory()
    s = worker.settings
    sim = DealSimulator(seed=11, dirty_rate=0.08)
    events = list(sim.stream(T0, timedelta(minutes=7), 600))
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"".join(value + b"\n" for _, value in events))

    offline = cli(worker, "test", str(jsonl), "--live", "--json")
    assert offline.returncode == 0, offline.stderr
    expected = [json.loads(line) for line in offline.stdout.splitlines() if line.strip()]
    assert len(expected) >= 20, offline.stderr
    assert len({a["rule_id"] for a in expected}) >= 4

    await produce(s.bootstrap_servers, s.events_topic, events)
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: len(r) >= len(expected), timeout=60
    )
    live = values(records + await read_all(s.bootstrap_servers, s.alerts_topic, settle=1.0))

    def keyed(alerts: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(a["alert_id"], a["sequence"], a["status"], a["rule_id"], a["rule_version"],
                 a["subject"]["id"], a["message"], json.dumps(a["evidence"], sort_keys=True))
                for a in alerts}  # fmt: skip

    assert keyed(live) == keyed(expected)


async def test_every_worker_holds_every_rule_and_seeding_happens_once(
    worker_factory: WorkerFactory,
) -> None:
    first = worker_factory()
    second = worker_factory()  # same topics and group: partitions are split, rules are not
    s = first.settings
    seeded = await read_all(s.bootstrap_servers, s.rules_topic, settle=0.5)
    assert len(seeded) == 23, [r.key for r in seeded]  # seeded once, by the first worker
    body = orjson.dumps({
        "id": "test-both", "type": "condition", "condition": "deal.amount > 10.0",
        "message": "m",
    }).decode()  # fmt: skip
    status, answer = http(first, "PUT", "/rules/test-both", body)
    assert status == 201, answer
    assert await wait_version(second, "test-both", 1), second.log_tail()
    _, listing = http(second, "GET", "/rules")
    _, listing_first = http(first, "GET", "/rules")
    assert listing["version"] == listing_first["version"]
    assert len(listing["rules"]) == 24
