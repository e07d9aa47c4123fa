"""KPI anomalies and silent feeds on the real broker: one level shift is one FIRING and one
RESOLVED; a feed that stops raises its alert and lowers its KPI's trust."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration.alerting_helpers import by, snapshot, write_rules
from tests.integration.conftest import WorkerFactory
from tests.integration.kafka_io import consume_until, produce, values

# 30 calm points around 20, then the level moves to about 40 and stays there
CALM = [20, 22, 28, 17, 22, 16, 19, 21, 20, 18, 23, 10, 18, 27, 14, 20, 23, 20, 28, 17,
        23, 25, 20, 18, 22, 18, 22, 17, 11, 14]  # fmt: skip
SHIFTED = [30, 46, 29, 53, 40, 31, 51, 34, 36, 48, 45, 37, 40, 36]
EVERY_HOUR = {"timezone": "UTC", "days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00",
              "end": "23:59"}  # fmt: skip

RULES: list[dict[str, Any]] = [
    {
        "id": "deals-shift",
        "type": "kpi_anomaly",
        "kpi": "new_deals",
        "warmup": 10,
        "message": "New deals of {kpi.scope} at {kpi.value}: {evidence.component}",
    },
    {
        "id": "won-feed-silent",
        "type": "feed_silence",
        "kpi": "deals_won",
        "warmup": 4,
        "min_gap": "PT2S",
        "business_time": EVERY_HOUR,
        "message": "No {kpi.id} snapshot since {evidence.silent_since}",
    },
]


async def wait_alerts(s: Any, done: Any, timeout: float = 40.0) -> list[dict[str, Any]]:
    records = await consume_until(
        s.bootstrap_servers, s.alerts_topic, lambda r: done(values(r)), timeout=timeout
    )
    return values(records)


def trust_gauge(metrics: str, kpi: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith("crm_pulse_kpi_trust{") and f'kpi="{kpi}"' in line:
            match = re.search(r"\} ([0-9.eE+-]+)$", line)
            return float(match.group(1)) if match else None
    return None


async def test_level_shift_is_one_episode_and_a_silent_feed_alerts(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = worker_factory(rules_dir=str(write_rules(tmp_path / "rules", RULES)))
    s = worker.settings
    t0 = datetime.now(UTC) - timedelta(hours=2)
    now = datetime.now(UTC)
    await produce(s.bootstrap_servers, s.kpis_topic, [
        *[snapshot("new_deals", float(v), scope=("global", "all"), at=t0 + timedelta(minutes=i))
          for i, v in enumerate(CALM + SHIFTED)],
        # the won-deals feed: a snapshot every 0.5 s, then nothing
        *[snapshot("deals_won", 3.0, scope=("global", "all"),
                   at=now - timedelta(seconds=3) + timedelta(seconds=0.5 * i))
          for i in range(6)],
    ])  # fmt: skip

    def seen(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "deals-shift", status="RESOLVED")) and bool(
            by(alerts, "won-feed-silent", status="FIRING")
        )

    alerts = await wait_alerts(s, seen)
    assert seen(alerts), (alerts, worker.log_tail())
    shift = by(alerts, "deals-shift")
    assert [a["status"] for a in shift] == ["FIRING", "RESOLVED"], shift
    fired = shift[0]
    assert fired["evidence"]["component"] in ("spike", "level_shift_up")
    assert 15.0 < fired["evidence"]["expected"] < 25.0
    low, high = fired["evidence"]["band"]
    assert low < fired["evidence"]["expected"] < high < fired["evidence"]["value"]
    assert shift[1]["alert_id"] == fired["alert_id"]
    silent = by(alerts, "won-feed-silent", status="FIRING")
    assert len(silent) == 1
    evidence = silent[0]["evidence"]
    assert evidence["kpi_trust"] < 0.5 and evidence["kpi_trust_before"] == 0.95
    assert evidence["allowed_silence_s"] >= 2.0
    assert silent[0]["subject"]["scope"] == "global:all"
    trust = trust_gauge(worker.http_text("/metrics"), "deals_won")
    assert trust is not None and trust < 0.5
    # the feed comes back: the episode resolves
    await produce(s.bootstrap_servers, s.kpis_topic,
                  [snapshot("deals_won", 4.0, scope=("global", "all"))])  # fmt: skip

    def back(alerts: list[dict[str, Any]]) -> bool:
        return bool(by(alerts, "won-feed-silent", status="RESOLVED"))

    alerts = await wait_alerts(s, back)
    assert back(alerts), (alerts, worker.log_tail())
    resolved = by(alerts, "won-feed-silent", status="RESOLVED")
    assert resolved[0]["alert_id"] == silent[0]["alert_id"]
    assert len(by(alerts, "deals-shift", status="FIRING")) == 1
