"""The whole Maven CRM dataset through a real broker and a real worker, every KPI cell
checked against an independent batch computation over the CSV files (tests/maven_batch.py).

Also sent: every 20th event a second time (same event_id: counts zero) and an update
repeating a closed deal's stage (no change: counts zero).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from typing import Any

import orjson

from streams.kpis.replay import synthesize
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.kafka_io import produce, read_all, values
from tests.maven_batch import MAVEN, cells_of, expected

TRUST_FLOOR = 0.5


def metric_sum(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric(text: str, name: str, labels: str) -> float | None:
    match = re.search(re.escape(f"{name}{{{labels}}}") + r" (\S+)", text)
    return float(match.group(1)) if match else None


async def test_maven_replay_matches_batch_computation(worker_factory: WorkerFactory) -> None:
    started = time.monotonic()
    worker = worker_factory(
        kpi_directory=str(MAVEN / "sales_teams.csv"),
        # the replay sends 14 months in seconds: two input partitions interleave by
        # fetch, so event time on the KPI side may jump back by weeks; nothing is late here
        kpi_allowed_lateness_days="1000",
        kpi_trust_floor=str(TRUST_FLOOR),
    )
    s = worker.settings
    replay_started = time.monotonic()
    replay = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", str(MAVEN), "--quiet"],
        env=worker.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert replay.returncode == 0, replay.stderr
    print(replay.stdout.strip())
    events = synthesize(MAVEN)
    replayed = int(re.search(r"replayed (\d+) events", replay.stdout).group(1))  # type: ignore[union-attr]
    assert replayed == len(events) == 15511

    duplicates = [(e.key, e.encoded()) for e in events[::20]]
    closed = [e for e in events if e.value["op"] == "update"][:200]
    no_ops = [
        (
            e.key,
            orjson.dumps(
                {
                    **e.value,
                    "event_id": e.value["event_id"] + ":again",
                    "fields": {"stage": e.value["fields"]["stage"]},
                }
            ),
        )
        for e in closed
    ]
    await produce(s.bootstrap_servers, s.events_topic, duplicates + no_ops)
    total = replayed + len(duplicates) + len(no_ops)

    deadline = time.monotonic() + 240
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        text = worker.http_text("/metrics")
        seen = metric_sum(text, "crm_pulse_events_total") + metric_sum(
            text, "crm_pulse_duplicate_events_total"
        )
        status = orjson.loads(worker.http_text("/kpis/status"))
        if (
            seen >= total
            and status["messages_sent"] == status["messages_applied"]
            and status["dirty_scopes"] == 0
        ):
            break
        await asyncio.sleep(1.0)
    else:
        raise AssertionError(f"worker did not finish: {status}\n{worker.log_tail()}")
    processed_at = time.monotonic()
    await asyncio.sleep(2 * s.kpi_publish_interval_s + 1)  # the last publication round

    assert metric_sum(text, "crm_pulse_duplicate_events_total") == len(duplicates)
    assert status["late"] == 0 and status["watermark"].startswith("2017-12-31")

    latest: dict[bytes, dict[str, Any]] = {}
    records = await read_all(s.bootstrap_servers, s.kpis_topic, settle=2.0)
    for record, body in zip(records, values(records), strict=True):
        assert record.key is not None
        latest[record.key] = body
    got = cells_of(list(latest.values()))
    want, as_of = expected()

    assert set(got) == set(want), (
        sorted(set(want) - set(got))[:10],
        sorted(set(got) - set(want))[:10],
    )
    wrong = {k: (want[k], got[k]) for k in want if got[k] != want[k]}
    assert not wrong, f"{len(wrong)} of {len(want)} cells differ: {list(wrong.items())[:10]}"
    assert len(want) > 9000

    # dirty data: GTXPro has no price, open deals lack an amount, the trust says so
    glob = latest[b"open_pipeline_value|global:all|all"]
    completeness = next(r for r in glob["trust"]["reasons"] if r["name"] == "completeness")
    assert 0 < completeness["value"] < 1 and glob["trust"]["value"] <= completeness["value"]
    quality = latest[b"required_fields_completeness|global:all|all"]
    assert 0 < quality["value"] < 1
    for body in latest.values():
        assert body["untrusted"] == (body["trust"]["value"] < TRUST_FLOOR), body
        assert body["schema_version"] == 1
    assert any(b["untrusted"] for b in latest.values())
    assert any(not b["untrusted"] for b in latest.values())

    # same values on GET /kpis (filters) and the Prometheus gauges (no per-owner series)
    body = orjson.loads(worker.http_text("/kpis?kpi=win_rate&scope_kind=region&window=all"))
    assert body["count"] == 3
    for snap in body["snapshots"]:
        cell = ("win_rate", f"region:{snap['scope']['id']}", "all", "1970-01-01", "")
        assert snap["value"] == want[cell]
    text = worker.http_text("/metrics")
    gauge = metric(
        text,
        "crm_pulse_kpi_value",
        'kpi="win_rate",scope_id="all",scope_kind="global",window="all"',
    )
    assert gauge == want[("win_rate", "global:all", "all", "1970-01-01", "")]
    assert 'scope_kind="owner"' not in text

    show = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "kpis",
            "show",
            "--url",
            worker.url,
            "--kpi",
            "win_rate",
            "--scope-kind",
            "global",
        ],
        env=worker.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert show.returncode == 0, show.stderr
    assert "win_rate" in show.stdout and "global:all" in show.stdout
    assert f"{want[('win_rate', 'global:all', 'all', '1970-01-01', '')]:.1%}" in show.stdout

    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
    assert "Traceback" not in worker.log_path.read_text(errors="replace")
    busy = processed_at - replay_started
    print(
        f"worker: {total} events replayed and processed in {busy:.1f}s "
        f"({total / busy:,.0f} events/s end to end); test {time.monotonic() - started:.1f}s; "
        f"{len(want)} cells equal as of {as_of}"
    )
