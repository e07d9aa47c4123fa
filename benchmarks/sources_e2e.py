"""Events per second one worker takes end to end from each topic source type, beside the
same worker's ingest of ready-made ChangeEvents, measured in the same run.

A local broker (the project's launcher) and one ``crm-pulse worker`` subprocess with the
sources file of ``tests/data/sources/sources.yaml`` (its topic sources: ``crm-db``
debezium, ``salesforce`` salesforce_cdc, ``pipedrive`` mapping). For each workload,
``--inputs`` raw payloads (the sample payloads with distinct ids, as
``benchmarks/sources_translate.py`` builds them) are produced to the source's topic; the
clock runs from the first event the worker counts to the last one: the source agent
translates, writes to ``crm.events`` and acks, then the ingest path applies the events
(``crm_pulse_events_total{source=...}``). The baseline produces the same number of
ChangeEvents straight to ``crm.events`` (ingest only).

Run: ``python benchmarks/sources_e2e.py [--inputs N]`` (about 2 minutes at 20,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sources_translate import (  # type: ignore[import-not-found]  # noqa: E402
    debezium_envelope,
    pipedrive_change,
    salesforce_update,
)

from streams.processes import stop_process_group  # noqa: E402
from streams.runtime.broker import LocalKafka, free_port, wait_until_serving  # noqa: E402
from streams.runtime.topics import ensure_topics, topic_specs  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.sources import build_translator, load_sources  # noqa: E402

SOURCES = ROOT / "tests" / "data" / "sources" / "sources.yaml"
#: workload -> (source id, its topic in the sources file, input builder)
WORKLOADS: dict[str, tuple[str, str, Callable[[int], Any]]] = {
    "debezium (schema envelope, update)": ("crm-db", "crmdb.public.deals", debezium_envelope),
    "salesforce_cdc (UPDATE)": ("salesforce", "salesforce.cdc", salesforce_update),
    "mapping from a topic (Pipedrive v2)": ("pipedrive", "pipedrive.webhooks", pipedrive_change),
}


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    try:
        for i, value in enumerate(values):
            await producer.send(topic, key=str(i).encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def create_topics(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=4, replication_factor=1)
                                   for n in names])  # fmt: skip
    finally:
        await admin.close()


def counted(url: str, source: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=60) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("crm_pulse_events_total{") and f'source="{source}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def timed(url: str, source: str, want: float, timeout: float = 600.0) -> tuple[float, float]:
    """Wait until ``want`` events of ``source`` are counted: (events, seconds) measured from
    the first poll that saw one (the events before it are left out of the rate)."""
    deadline = time.monotonic() + timeout
    first: tuple[float, float] | None = None
    while time.monotonic() < deadline:
        now, n = time.monotonic(), counted(url, source)
        if first is None and n > 0:
            first = (now, n)
        if n >= want and first is not None:
            return n - first[1], now - first[0]
        time.sleep(0.05)
    raise TimeoutError(f"{source}: {counted(url, source)} of {want} events counted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=20_000, help="inputs per workload")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crm-pulse-bench-sources-"))
    base = Settings()
    with LocalKafka(cache_dir=base.cache_dir, version=base.kafka_version,
                    work_dir=work / "kafka") as broker:  # fmt: skip
        suffix = uuid.uuid4().hex[:6]
        port = free_port()
        env = dict(os.environ)
        env.update({
            "CRM_PULSE_BROKER": f"kafka://{broker.bootstrap}",
            "CRM_PULSE_APP_ID": f"bench-{suffix}",
            "CRM_PULSE_DATA_DIR": str(work / "data"), "CRM_PULSE_WEB_PORT": str(port),
            "CRM_PULSE_SOURCES_FILE": str(SOURCES), "CRM_PULSE_API_TOKEN": "bench",
            "CRM_PULSE_RULES_DIR": str(ROOT / "rules"), "CRM_PULSE_LOG_LEVEL": "warning",
            "TEST_HUBSPOT_SECRET": "bench-secret",
        })  # fmt: skip
        settings = Settings(broker=env["CRM_PULSE_BROKER"], app_id=env["CRM_PULSE_APP_ID"])
        topics = [topic for _, topic, _ in WORKLOADS.values()]
        asyncio.run(ensure_topics(settings))
        asyncio.run(create_topics(broker.bootstrap, topics))  # before the worker subscribes
        asyncio.run(wait_until_serving(settings, [*topic_specs(settings), *topics]))
        log = open(work / "worker.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(url + "/ready", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise SystemExit((work / "worker.log").read_text()[-3000:]) from None
                    time.sleep(0.5)
            print(f"one worker, {args.inputs:,} inputs per workload, end to end "
                  f"(source topic -> translate -> crm.events -> ingest)\n")  # fmt: skip
            print(f"{'workload':<40} {'events':>8} {'seconds':>8} {'events/s':>9}")
            translated: list[bytes] = []
            pipedrive = load_sources(SOURCES).get("pipedrive")
            assert pipedrive is not None
            translator = build_translator(pipedrive)
            now = datetime.now(UTC)
            for i in range(args.inputs):
                raw = orjson.dumps(pipedrive_change(i + 10 * args.inputs))
                for event in translator.translate(raw, received_at=now).events:
                    update = {"source": "baseline", "event_id": f"baseline-{i}"}
                    translated.append(event.model_copy(update=update).model_dump_json().encode())
            asyncio.run(produce(broker.bootstrap, settings.events_topic, translated))
            n, seconds = timed(url, "baseline", len(translated))
            print(f"{'baseline: ChangeEvents to crm.events':<40} {n:>8,.0f} {seconds:>8.2f} "
                  f"{n / seconds:>9,.0f}")  # fmt: skip
            for name, (source, topic, build) in WORKLOADS.items():
                values = [orjson.dumps(build(i)) for i in range(args.inputs)]
                asyncio.run(produce(broker.bootstrap, topic, values))
                n, seconds = timed(url, source, args.inputs)
                print(f"{name:<40} {n:>8,.0f} {seconds:>8.2f} {n / seconds:>9,.0f}", flush=True)
        finally:
            stop_process_group(worker, timeout=30)


if __name__ == "__main__":
    main()
