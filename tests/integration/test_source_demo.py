"""``crm-pulse demo --source postgres`` run as a user would: PostgreSQL, Kafka Connect with
Debezium and a worker start, the SQL UPDATEs it prints raise deal-stage-backwards alerts,
and it stops by itself (``--duration``) leaving no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from streams.runtime.broker import LocalKafka, free_port

REPO = Path(__file__).resolve().parents[2]


def test_postgres_demo_shows_an_alert_from_an_sql_update(kafka: LocalKafka) -> None:
    env = dict(os.environ, CRM_PULSE_WEB_PORT=str(free_port()),
               CRM_PULSE_CACHE_DIR=str(kafka.cache_dir))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--source", "postgres", "--duration", "75"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    updated = re.findall(r"SQL> UPDATE deals SET stage = '(\w+)'.* WHERE id = '(D-\d+)'.*"
                            r"\((\w+) -> \1\)", out)  # fmt: skip
    alerts = re.findall(r"FIRING\s+warning\s+deal-stage-backwards\s+(D-\d+)", out)
    assert alerts, out[-3000:]
    assert set(alerts) <= {deal for _, deal, _ in updated}  # each from a printed UPDATE
    assert "demo stopped: worker, Connect, PostgreSQL and the broker are down." in out
    pattern = "crm-pulse-demo-pg-|crm-pulse-postgres-|crm-pulse-connect-"
    leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True)
    assert leftovers.stdout == b"", leftovers.stdout
