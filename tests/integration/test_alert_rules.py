"""Every rule type on the real broker: record rules and timers, KPI rules, firing and resolving."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.alerting_helpers import by, now_event, snapshot, write_rules
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.kafka_io import consume_until, produce, values

OPEN = "deal.stage != 'Won' && deal.stage != 'Lost'"
RECORD_RULES: list[dict[str, Any]] = [
    {
        "id": "cond-amount",
        "type": "condition",
        "condition": "deal.amount <= 0.0",
        "message": "Deal {subject.id} has amount {deal.amount}",
    },
    {
        "id": "trans-amount",
        "type": "transition",
        "field": "amount",
        "change": "increased",
        "pct": 50,
        "message": "Amount of {subject.id} up {evidence.pct} %",
    },
    {
        "id": "req-next-step",
        "type": "required_fields",
        "fields": ["next_step"],
        "when_stages": ["Negotiation"],
        "message": "{subject.id} lacks {evidence.missing_text}",
    },
    {
        "id": "idle-deal",
        "type": "inactivity",
        "after": "PT3S",
        "activity_fields": ["stage", "next_step"],
        "condition": OPEN,
        "message": "{subject.id} idle since {evidence.idle_since}",
    },
    {
        "id": "late-close",
        "type": "overdue",
        "field": "close_date",
        "condition": "deal.stage != 'Won' && deal.stage != 'Lost'",
        "message": "{subject.id} close date {evidence.value} passed",
    },
    {
        "id": "freq-amount",
        "type": "frequency",
        "count": 3,
        "window": "PT1M",
        "fields": ["amount"],
        "message": "{subject.id} amount edited {evidence.count} times",
    },
]


async def wait_alerts(s: Any, done: Any, timeout: float = 40.0) -> list[dict[str, Any]]:
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: done(values(r)), timeout=timeout
    )
    return values(records)


async def test_record_rules_fire_and_resolve(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", RECORD_RULES)
    worker = worker_factory(rules_dir=str(rules))
    s = worker.settings
    now = datetime.now(UTC)
    yesterday = (now - timedelta(days=1)).date().isoformat()
    soon = (now + timedelta(seconds=2)).isoformat()
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-cond", "create", stage="Prospecting", amount=0.0, close_date="2099-01-01"),
        now_event("D-trans", "create", stage="Prospecting", amount=100.0, close_date="2099-01-01"),
        now_event("D-trans", "update", amount=180.0),
        now_event("D-req", "create", stage="Negotiation", amount=10.0, close_date="2099-01-01"),
        now_event("D-late", "create", stage="Proposal", amount=10.0, close_date=yesterday),
        now_event("D-soon", "create", stage="Proposal", amount=10.0, close_date=soon),
        now_event("D-freq", "create", stage="Proposal", amount=1.0, close_date="2099-01-01"),
        now_event("D-freq", "update", amount=2.0),
        now_event("D-freq", "update", amount=3.0),
        now_event("D-idle", "create", stage="Proposal", amount=10.0, close_date="2099-01-01"),
    ])  # fmt: skip

    def fired(alerts: list[dict[str, Any]]) -> bool:
        return all(by(alerts, rule, subject, "FIRING") for rule, subject in [
            ("cond-amount", "D-cond"), ("trans-amount", "D-trans"), ("req-next-step", "D-req"),
            ("late-close", "D-late"), ("late-close", "D-soon"), ("freq-amount", "D-freq"),
            ("idle-deal", "D-idle"),
        ])  # fmt: skip

    alerts = await wait_alerts(s, fired)
    assert fired(alerts), (alerts, worker.log_tail())
    assert by(alerts, "trans-amount", "D-trans")[0]["evidence"]["pct"] == 80.0
    assert by(alerts, "freq-amount", "D-freq")[0]["evidence"]["count"] == 3
    assert by(alerts, "req-next-step", "D-req")[0]["evidence"]["missing"] == ["next_step"]
    # the timer-driven ones came after their deadline, not at the event
    soon_fired = by(alerts, "late-close", "D-soon", "FIRING")[0]
    assert datetime.fromisoformat(soon_fired["fired_at"]) >= datetime.fromisoformat(soon)
    idle = by(alerts, "idle-deal", "D-idle", "FIRING")[0]
    assert datetime.fromisoformat(idle["fired_at"]) >= now + timedelta(seconds=3)
    # other lasting rules fired for every deal created idle; only the expected subjects matter
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-cond", "update", amount=50.0),
        now_event("D-req", "update", next_step="Send contract"),
        now_event("D-late", "update", stage="Won"),
        now_event("D-soon", "update", close_date="2099-12-31"),
        now_event("D-idle", "update", stage="Negotiation", next_step="call"),
    ])  # fmt: skip

    def resolved(alerts: list[dict[str, Any]]) -> bool:
        return all(by(alerts, rule, subject, "RESOLVED") for rule, subject in [
            ("cond-amount", "D-cond"), ("req-next-step", "D-req"), ("late-close", "D-late"),
            ("late-close", "D-soon"), ("idle-deal", "D-idle"),
        ])  # fmt: skip

    alerts = await wait_alerts(s, resolved)
    assert resolved(alerts), (alerts, worker.log_tail())
    for rule, subject in [("cond-amount", "D-cond"), ("idle-deal", "D-idle")]:
        firing = by(alerts, rule, subject, "FIRING")
        done = by(alerts, rule, subject, "RESOLVED")
        assert len({a["alert_id"] for a in firing}) == 1
        assert done[0]["alert_id"] == firing[0]["alert_id"]
        assert done[0]["sequence"] > firing[0]["sequence"]
    # point rules (movements) never resolve
    assert not by(alerts, "trans-amount", status="RESOLVED")
    metrics = worker.http_text("/metrics")
    errors = [
        line for line in metrics.splitlines()
        if line.startswith("crm_pulse_rule_errors_total{") and not line.endswith(" 0.0")
    ]  # fmt: skip
    assert errors == [], errors  # per-rule series exist from the start, at 0


KPI_RULES: list[dict[str, Any]] = [
    {
        "id": "win-rate-low",
        "type": "kpi_threshold",
        "kpi": "win_rate",
        "min": 0.2,
        "sustain": "PT2S",
        "scope_kinds": ["team"],
        "message": "Win rate of {kpi.scope} at {kpi.value}",
    },
    {
        "id": "new-deals-anomaly",
        "type": "kpi_anomaly",
        "kpi": "new_deals",
        "warmup": 8,
        "threshold": 0.999,
        "half_life": 10,
        "message": "New deals of {kpi.scope} at {kpi.value}, score {evidence.score}",
    },
]


async def test_kpi_rules_fire_and_resolve(worker_factory: WorkerFactory, tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules", KPI_RULES)
    worker = worker_factory(rules_dir=str(rules))
    s = worker.settings
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    normal = [20.0, 22.0, 19.0, 21.0, 20.0, 23.0, 18.0, 21.0, 20.0, 22.0]
    await produce(s.bootstrap_servers, s.kpis_topic, [
        # untrusted values are ignored, even far out of the band
        snapshot("win_rate", 0.01, untrusted=True),
        snapshot("win_rate", 0.02, trust=0.1),
        snapshot("win_rate", 0.1),  # out of band: fires only once it stays out for 2 s
        *[snapshot("new_deals", v, scope=("global", "all"), at=t0 + timedelta(minutes=i))
          for i, v in enumerate(normal)],
        # a spike far from the learnt level (after warm-up)
        snapshot("new_deals", 0.0, scope=("global", "all"), at=t0 + timedelta(minutes=11)),
    ])  # fmt: skip
    sent_at = datetime.now(UTC)

    def fired(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "win-rate-low", status="FIRING")) and bool(
            by(alerts, "new-deals-anomaly", status="FIRING")
        )

    alerts = await wait_alerts(s, fired)
    assert fired(alerts), (alerts, worker.log_tail())
    low = by(alerts, "win-rate-low", status="FIRING")
    assert len(low) == 1
    assert low[0]["evidence"]["value"] == 0.1
    assert low[0]["subject"] == {"kind": "kpi", "entity": None, "id": "win_rate",
                                 "scope": "team:west"}  # fmt: skip
    assert datetime.fromisoformat(low[0]["fired_at"]) >= sent_at + timedelta(seconds=1)
    spike = by(alerts, "new-deals-anomaly", status="FIRING")
    assert len(spike) == 1
    assert spike[0]["evidence"]["value"] == 0.0
    assert spike[0]["evidence"]["score"] >= 0.999
    await produce(s.bootstrap_servers, s.kpis_topic, [
        snapshot("win_rate", 0.35),
        snapshot("new_deals", 21.0, scope=("global", "all"), at=t0 + timedelta(minutes=12)),
    ])  # fmt: skip

    def resolved(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "win-rate-low", status="RESOLVED")) and bool(
            by(alerts, "new-deals-anomaly", status="RESOLVED")
        )

    alerts = await wait_alerts(s, resolved)
    assert resolved(alerts), (alerts, worker.log_tail())
    assert by(alerts, "win-rate-low", status="RESOLVED")[0]["alert_id"] == low[0]["alert_id"]
    metrics = worker.http_text("/metrics")
    assert 'crm_pulse_rule_skips_total{reason="untrusted",rule="win-rate-low"} 2.0' in metrics
    await check_cli(worker)


def crm_pulse(worker: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=worker.env, cwd=REPO,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def check_cli(worker: Any) -> None:
    """``alerts tail`` prints the alerts; ``silences add|list|remove`` reach the worker."""
    tail = crm_pulse(worker, "alerts", "tail", "--duration", "4", "--colour", "never",
                     "--rule", "win-rate-low")  # fmt: skip
    lines = [line for line in tail.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == ["FIRING", "RESOLVED"], tail
    assert "win_rate@team:west" in lines[0] and "Win rate of team:west at 0.1" in lines[0]
    added = crm_pulse(worker, "silences", "add", "--team", "west", "--for", "PT2H",
                      "--id", "maint-1", "--comment", "reorg")  # fmt: skip
    assert added.returncode == 0 and "silence maint-1 until" in added.stdout, added
    seen = False
    for _ in range(50):
        body = json.loads(worker.http_text("/silences"))
        if [s["id"] for s in body["silences"]] == ["maint-1"]:
            seen = body["silences"][0]["active"] and body["silences"][0]["team"] == "west"
            break
        await asyncio.sleep(0.2)
    assert seen, worker.log_tail()
    listed = crm_pulse(worker, "silences", "list")
    assert "maint-1" in listed.stdout and "active" in listed.stdout and "team=west" in listed.stdout
    removed = crm_pulse(worker, "silences", "remove", "maint-1")
    assert removed.returncode == 0
    assert "0 silence(s)" in crm_pulse(worker, "silences", "list").stdout


async def test_deleting_or_retyping_a_rule_resolves_its_open_episodes(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    keep = {"id": "keep", "type": "condition", "condition": "deal.amount > 1000000.0",
            "message": "{subject.id} is huge"}  # fmt: skip
    doomed = {"id": "doomed", "type": "condition", "condition": "deal.amount <= 0.0",
              "severity": "critical", "message": "{subject.id} has no amount"}  # fmt: skip
    morph = {"id": "morph", "type": "condition", "condition": "deal.amount <= 0.0",
             "message": "{subject.id} has no amount"}  # fmt: skip
    rules = write_rules(tmp_path / "rules", [keep, doomed, morph])
    worker = worker_factory(rules_dir=str(rules))
    s = worker.settings
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-gone", "create", stage="Proposal", amount=0.0),
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: len(by(a, "doomed") + by(a, "morph")) == 2)
    [fired] = by(alerts, "doomed", "D-gone", "FIRING")
    [fired_morph] = by(alerts, "morph", "D-gone", "FIRING")
    # delete `doomed` and turn `morph` into another type, with the CLI; the record never
    # changes again: the timer scan closes both episodes
    morphed = {"id": "morph", "type": "required_fields", "fields": ["next_step"],
               "version": 2, "message": "{subject.id} lacks a next step"}  # fmt: skip
    write_rules(tmp_path / "rules", [keep, morphed])
    applied = crm_pulse(worker, "rules", "apply", "--prune", str(rules))
    assert applied.returncode == 0, applied
    assert "deleted    doomed" in applied.stdout, applied.stdout

    def closed(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "doomed", "D-gone", "RESOLVED")) and bool(
            by(alerts, "morph", "D-gone", "RESOLVED"))  # fmt: skip

    alerts = await wait_alerts(s, closed)
    assert closed(alerts), (alerts, worker.log_tail())
    [resolved] = by(alerts, "doomed", "D-gone", "RESOLVED")
    assert (resolved["alert_id"], resolved["sequence"]) == (fired["alert_id"], 2)
    assert resolved["evidence"] == {"reason": "rule deleted"}
    assert resolved["severity"] == "critical" and resolved["owner_id"] == "rep-001"
    [changed] = by(alerts, "morph", "D-gone", "RESOLVED")
    assert (changed["alert_id"], changed["sequence"]) == (fired_morph["alert_id"], 2)
    assert changed["evidence"] == {"reason": "rule changed"}
    # a later change of the record opens nothing for the deleted rule, nor closes it twice
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-gone", "update", amount=-5.0, next_step="call"),
    ])  # fmt: skip
    await asyncio.sleep(2.0)
    alerts = await wait_alerts(s, lambda a: False, timeout=3.0)
    assert len(by(alerts, "doomed")) == 2 and len(by(alerts, "morph", status="RESOLVED")) == 1


def _on_partitions(prefix: str, partitions: int, wanted: int) -> list[str]:
    """Record ids whose events land on every partition of the input topic, in turn."""
    from aiokafka.partitioner import murmur2

    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while min(len(ids) for ids in found.values()) < wanted:
        rid = f"{prefix}-{i}"
        found[(murmur2(rid.encode()) & 0x7FFFFFFF) % partitions].append(rid)
        i += 1
    return [rid for group in zip(*found.values(), strict=False) for rid in group]


async def test_frequency_per_owner_counts_across_partitions(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", [{
        "id": "owner-lost", "type": "frequency", "per": "owner", "count": 3, "window": "PT1H",
        "fields": ["stage"], "condition": "deal.stage == 'Lost'",
        "message": "{owner.id} lost {evidence.count} deals ({evidence.records_text})",
    }])  # fmt: skip
    worker = worker_factory(rules_dir=str(rules))
    s = worker.settings
    deals = _on_partitions("D-own", s.topic_partitions, 3)[:5]
    # built in event-time order: a change older than its record's last one is not applied
    created = [now_event(d, "create", owner="rep-x", stage="Proposal") for d in deals]
    lost = [now_event(d, "update", owner="rep-x", stage="Lost") for d in deals[:3]]
    await produce(s.bootstrap_servers, s.events_topic, [
        *created,
        now_event("D-y1", "create", owner="rep-y", stage="Lost"),
        now_event("D-y2", "create", owner="rep-y", stage="Lost"),
        *lost,
        lost[1],  # the same event again: counted once
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: bool(by(a, "owner-lost")))
    [alert] = by(alerts, "owner-lost")
    assert alert["status"] == "FIRING" and alert["owner_id"] == "rep-x"
    assert alert["subject"] == {"kind": "owner", "entity": None, "id": "rep-x", "scope": None}
    assert sorted(alert["evidence"]["records"]) == sorted(deals[:3])
    assert len(alert["event_ids"]) == 3
    # counted again from zero: two more losses of rep-x and rep-y's two fire nothing; a
    # third of rep-x fires a second, different alert
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event(deals[3], "update", owner="rep-x", stage="Lost"),
        now_event(deals[4], "update", owner="rep-x", stage="Lost"),
    ])  # fmt: skip
    await asyncio.sleep(3.0)
    alerts = await wait_alerts(s, lambda a: False, timeout=2.0)
    assert len(by(alerts, "owner-lost")) == 1, by(alerts, "owner-lost")
    await produce(s.bootstrap_servers, s.events_topic, [
        now_event("D-own-late", "create", owner="rep-x", stage="Lost"),
    ])  # fmt: skip
    alerts = await wait_alerts(s, lambda a: len(by(a, "owner-lost")) == 2)
    second = by(alerts, "owner-lost")
    assert len(second) == 2 and second[0]["alert_id"] != second[1]["alert_id"], second
    assert not [a for a in alerts if a["owner_id"] == "rep-y"]
