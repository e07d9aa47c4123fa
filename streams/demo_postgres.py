"""``crm-pulse demo --source postgres``: a CRM in PostgreSQL, read by Debezium, judged live.

Starts, all on loopback: Apache Kafka (KRaft), a PostgreSQL with the CRM schema and a few
deals (:mod:`streams.runtime.postgres`), Kafka Connect with Debezium's PostgreSQL
connector (:mod:`streams.runtime.connect`), and a worker whose sources file reads the
connector's topics. Then it plays a sales team: every few seconds an SQL ``UPDATE``
moves a deal (now and then backwards) and prints the statement; the alerts the worker
raises are printed as they arrive. Ctrl-C (or ``--duration``) stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.processes import stop_process_group
from streams.runtime.alerts_topic import tail_alerts
from streams.runtime.broker import LocalKafka, wait_until_serving
from streams.runtime.connect import LocalConnect, debezium_postgres_config
from streams.runtime.postgres import LocalPostgres
from streams.runtime.topics import ensure_topics, topic_specs
from streams.settings import DEFAULT_STAGE_ORDER, Settings

TOPIC_PREFIX = "crmdb"
SOURCES = """# written by crm-pulse demo --source postgres
sources:
  - id: crm-db
    type: debezium
    transport:
      kind: topic
      topics: [{p}.public.deals, {p}.public.leads, {p}.public.activities]
    mapping:
      objects:
        deals: {{entity: deal, id_field: id, owner_field: owner_id,
                 record_url: "https://crm.example.com/deals/{{id}}"}}
        leads: {{entity: lead, id_field: id, owner_field: owner_id}}
        activities: {{entity: activity, id_field: id, owner_field: owner_id}}
"""
SEED = """
INSERT INTO deals (id, name, stage, amount, probability, owner_id, region, next_step,
                   close_date)
SELECT format('D-%s', 1000 + i), format('Deal %s', 1000 + i),
       (ARRAY['Prospecting','Qualification','Engaging','Proposal'])[1 + i % 4],
       1000 * (1 + i % 7), 20 + i % 4 * 10, format('rep-%s', i % 5), 'West',
       'Call the buyer', DATE '2027-06-30'
FROM generate_series(1, 20) AS i;
"""


def next_update(rng: random.Random, deals: dict[str, str]) -> tuple[str, str]:
    """A deal and its new stage: mostly forward, one move in four backwards."""
    stages = [s for s in DEFAULT_STAGE_ORDER if s != "Won"]
    deal = rng.choice(sorted(deals))
    at = stages.index(deals[deal]) if deals[deal] in stages else 0
    if at > 0 and (rng.random() < 0.25 or at == len(stages) - 1):
        return deal, stages[rng.randrange(0, at)]
    return deal, stages[min(at + 1, len(stages) - 1)]


async def _play(
    pg: LocalPostgres, settings: Settings, worker: subprocess.Popen[bytes],
    every_s: float, duration: float | None,
) -> int:  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tail = asyncio.create_task(
        tail_alerts(settings, settings.alerts_topic, stop, sys.stdout.isatty())
    )
    rng = random.Random(7)
    rows = await asyncio.to_thread(pg.psql, "SELECT id, stage FROM deals ORDER BY id")
    deals = dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)
    started = next_at = time.monotonic()
    try:
        while not stop.is_set():
            if worker.poll() is not None:
                print(f"worker exited with code {worker.returncode}", file=sys.stderr)
                break
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            if now >= next_at:
                deal, stage = next_update(rng, deals)
                sql = f"UPDATE deals SET stage = '{stage}', updated_at = now() WHERE id = '{deal}'"
                await asyncio.to_thread(pg.psql, sql)
                print(f"SQL> {sql}   ({deals[deal]} -> {stage})", flush=True)
                deals[deal] = stage
                next_at = now + every_s
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(tail, timeout=10)
    return 0


def run_postgres_demo(
    settings: Settings, *, every_s: float = 3.0, duration: float | None = None
) -> int:
    """The demo of the module docstring; returns the exit code."""
    if "CRM_PULSE_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="crm-pulse-demo-pg-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)  # last: after every process is down
        print(f"starting Apache Kafka {settings.kafka_version} (KRaft, loopback)…", flush=True)
        broker = stack.enter_context(LocalKafka(
            cache_dir=settings.cache_dir, version=settings.kafka_version,
            work_dir=work / "kafka",
        ))  # fmt: skip
        print("starting PostgreSQL (wal_level=logical) with the CRM schema…", flush=True)
        pg = stack.enter_context(LocalPostgres())
        pg.load_schema()
        pg.psql(SEED)
        print("starting Kafka Connect with Debezium's PostgreSQL connector…", flush=True)
        connect = stack.enter_context(LocalConnect(
            bootstrap=broker.bootstrap, cache_dir=settings.cache_dir,
            kafka_version=settings.kafka_version, schemas_enable=True,
        ))  # fmt: skip
        connect.add_connector("crm-db", debezium_postgres_config(
            host="127.0.0.1", port=pg.port, user=pg.superuser, database=pg.database,
            topic_prefix=TOPIC_PREFIX, slot="crm_pulse_demo",
        ))  # fmt: skip
        sources = work / "sources.yaml"
        sources.write_text(SOURCES.format(p=TOPIC_PREFIX))
        demo = settings.model_copy(update={
            "broker": f"kafka://{broker.bootstrap}", "data_dir": work / "data",
            "sources_file": sources,
        })  # fmt: skip
        asyncio.run(_prepare(demo))
        token = settings.api_token.get_secret_value() if settings.api_token else None
        env = dict(os.environ)
        env.update({
            "CRM_PULSE_BROKER": demo.broker, "CRM_PULSE_DATA_DIR": str(demo.data_dir),
            "CRM_PULSE_SOURCES_FILE": str(sources),
            "CRM_PULSE_API_TOKEN": token or secrets.token_hex(16),
            "CRM_PULSE_LOG_LEVEL": os.environ.get("CRM_PULSE_LOG_LEVEL", "warning"),
        })  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, start_new_session=True
        )
        stack.callback(stop_process_group, worker, signal.SIGTERM, 20.0)
        print(
            f"CRM Pulse Postgres demo: psql {pg.dsn}, Connect {connect.url}, metrics "
            f"http://{demo.web_host}:{demo.web_port}/metrics. An SQL UPDATE every {every_s:g}s; "
            "Ctrl-C stops everything.",
            flush=True,
        )
        code = asyncio.run(_play(pg, demo, worker, every_s, duration))
    print("demo stopped: worker, Connect, PostgreSQL and the broker are down.", flush=True)
    return code


async def _prepare(settings: Settings) -> None:
    """The worker's topics and the connector's (a table without rows has none yet, and the
    worker would log it missing), served before the worker starts."""
    from aiokafka.admin import NewTopic

    from streams.runtime.clients import new_admin

    await ensure_topics(settings)
    tables = [f"{TOPIC_PREFIX}.public.{t}" for t in ("deals", "leads", "activities")]
    admin = new_admin(settings, "demo")
    await admin.start()
    try:
        missing = set(tables) - set(await admin.list_topics())
        if missing:
            await admin.create_topics(
                [NewTopic(t, num_partitions=1, replication_factor=1) for t in sorted(missing)]
            )
    finally:
        await admin.close()
    wanted = [*topic_specs(settings), *tables]
    await wait_until_serving(settings, wanted, [settings.app_id])
