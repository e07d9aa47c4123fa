"""KPI agent on a real broker: late events counted not lost, directory reload, topic reader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.kafka_io import event_bytes, produce, wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def deal(deal_id: str, day: int, owner: str, **fields: Any) -> tuple[bytes, bytes]:
    return event_bytes(
        event_id=str(uuid.uuid4()), source="test", entity="deal", entity_id=deal_id,
        op="create", occurred_at=(T0 + timedelta(days=day)).isoformat(), owner_id=owner,
        fields={"stage": "Engaging", "amount": 100, **fields},
    )  # fmt: skip


async def test_late_events_are_counted_and_directory_changes_apply_live(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    directory = tmp_path / "org.csv"
    directory.write_text("owner,team,region\nann,mia,West\n")
    worker = worker_factory(kpi_directory=str(directory), kpi_allowed_lateness_days="7",
                            kpi_publish_interval_s="0.3")  # fmt: skip
    s = worker.settings

    def status() -> dict[str, Any]:
        return dict(orjson.loads(worker.http_text("/kpis/status")))

    def open_value(scope_kind: str, scope_id: str) -> float | None:
        body = orjson.loads(worker.http_text(
            f"/kpis?kpi=open_pipeline_value&scope_kind={scope_kind}&scope_id={scope_id}&window=all"
        ))  # fmt: skip
        return body["snapshots"][0]["value"] if body["count"] else None

    await produce(s.bootstrap_servers, s.events_topic, [deal("D1", 40, "ann")])
    assert await wait_for(lambda: open_value("team", "mia") == 100.0, 30), worker.log_tail()
    await produce(s.bootstrap_servers, s.events_topic, [deal("D0", 2, "ann")])  # 38 days late
    assert await wait_for(lambda: status()["late"] == 4, 30), (status(), worker.log_tail())
    text = worker.http_text("/metrics")
    assert 'crm_pulse_kpi_late_events_total{scope_kind="global"} 1.0' in text
    assert open_value("global", "all") == 100.0  # the late one was not applied
    assert "arrived after the allowed lateness" in worker.log_path.read_text()

    directory.write_text("owner,team,region\nann,lou,East\n")  # a reorganisation, no restart
    await asyncio.sleep(1.2)  # the file is checked at most once a second
    await produce(s.bootstrap_servers, s.events_topic, [deal("D2", 41, "ann", amount=50)])
    assert await wait_for(lambda: open_value("team", "lou") == 50.0, 30), worker.log_tail()
    assert open_value("team", "mia") == 100.0  # what was counted stays where it was
    assert open_value("global", "all") == 150.0

    show = subprocess.run(
        [sys.executable, "-m", "streams.cli", "kpis", "show", "--topic", "--kpi",
         "open_pipeline_value", "--scope-kind", "region", "--window", "all"],
        env=worker.env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "region:East" in show.stdout and "50.00" in show.stdout
    assert "region:West" in show.stdout and "100.00" in show.stdout
