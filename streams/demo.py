"""``crm-pulse demo``: a local Kafka, a worker, the simulator and a live alert feed.

Everything runs on loopback and stops on Ctrl-C (or after ``--duration``), leaving no
process behind: the worker and the broker run in their own process groups and are
terminated, then killed if they linger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streams.alerting.view import format_alert
from streams.processes import stop_process_group
from streams.runtime.alerts_topic import tail_alerts
from streams.runtime.broker import LocalKafka, wait_until_serving
from streams.runtime.topics import ensure_topics, topic_specs
from streams.settings import Settings

__all__ = ["format_alert", "run_demo", "tail_alerts"]


async def _run(settings: Settings, worker_env: dict[str, str], rate: float,
               duration: float | None) -> int:  # fmt: skip
    from streams.simulator import run as simulate

    await ensure_topics(settings)
    # leaders elected and the group coordinator up before anyone produces or joins: a
    # fresh broker's transient errors would otherwise be the demo's first lines
    await wait_until_serving(settings, topic_specs(settings), [settings.app_id])
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=worker_env, start_new_session=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"CRM Pulse demo: broker {settings.bootstrap_servers}, metrics "
        f"http://{settings.web_host}:{settings.web_port}/metrics, health /health. "
        "Ctrl-C stops everything.",
        flush=True,
    )
    tasks = [
        asyncio.create_task(simulate(settings, settings.events_topic, rate=rate, stop=stop)),
        asyncio.create_task(
            tail_alerts(settings, settings.alerts_topic, stop, sys.stdout.isatty())
        ),
    ]
    started = time.monotonic()
    try:
        while not stop.is_set():
            if worker.poll() is not None:
                print(f"worker exited with code {worker.returncode}", file=sys.stderr)
                stop.set()
                break
            if duration is not None and time.monotonic() - started >= duration:
                stop.set()
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
        stop_process_group(worker, timeout=20.0)
    return 0 if worker.returncode in (0, -signal.SIGTERM, None) else int(worker.returncode)


def run_demo(
    settings: Settings, *, rate: float = 20.0, duration: float | None = None, kafka_port: int = 0
) -> int:
    if "CRM_PULSE_LOG_LEVEL" not in os.environ:  # the demo shows alerts, not client logs
        logging.getLogger().setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="crm-pulse-demo-"))
    broker = LocalKafka(cache_dir=settings.cache_dir, version=settings.kafka_version,
                        port=kafka_port, work_dir=work / "kafka")  # fmt: skip
    print(f"starting Apache Kafka {settings.kafka_version} (KRaft, loopback)…", flush=True)
    broker.start()
    try:
        token = (
            settings.api_token.get_secret_value() if settings.api_token else secrets.token_hex(16)
        )
        token_file = work / "api-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        demo_settings = settings.model_copy(
            update={"broker": f"kafka://{broker.bootstrap}", "data_dir": work / "data"}
        )
        env = dict(os.environ)
        env.update(
            {
                "CRM_PULSE_BROKER": demo_settings.broker,
                "CRM_PULSE_DATA_DIR": str(demo_settings.data_dir),
                "CRM_PULSE_API_TOKEN": token,
                "CRM_PULSE_LOG_LEVEL": os.environ.get("CRM_PULSE_LOG_LEVEL", "warning"),
            }
        )
        print(f"write API token in {token_file}", flush=True)
        return asyncio.run(_run(demo_settings, env, rate, duration))
    finally:
        broker.stop()
        print("demo stopped: broker and worker are down.", flush=True)
