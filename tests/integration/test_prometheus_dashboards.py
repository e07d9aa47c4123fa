"""Every PromQL query of every dashboard panel returns data from a real Prometheus.

A worker runs on the real broker, fed by the simulator (plus a few broken events for the
dead-letter panels); Prometheus (Debian's package) scrapes it with a copy of the repo's
``prometheus/prometheus.yml`` whose target points at the worker. Then each query of each
panel of each committed dashboard is evaluated through Prometheus's HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.dashboards.build import panel_queries
from streams.runtime.broker import free_port
from streams.settings import Settings
from streams.simulator import run as simulate
from tests.integration.conftest import REPO, WorkerFactory, run_sync
from tests.integration.kafka_io import event_bytes, produce

DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
#: Grafana's $__rate_interval, made concrete for a 1 s scrape interval.
RATE_WINDOW = "30s"
#: Added to the repo's rules for this test: an episode rule (active / resolved alerts, a
#: critical severity) and a condition that raises on the simulator's dirty amounts ("tbd",
#: null), which the engine isolates and counts as rule errors.
EXTRA_RULES = """
rules:
  - id: deal-missing-fields
    version: 1
    type: required_fields
    description: An open deal lacks the fields the forecast needs.
    severity: critical
    applies_to: {entity: deal}
    fields: [amount, next_step]
    title: "Deal {deal.name} lacks {evidence.missing_text}"
    message: "Deal {subject.id} lacks {evidence.missing_text}."
  - id: deal-big-amount
    version: 1
    type: condition
    description: A deal above 50k.
    severity: info
    applies_to: {entity: deal}
    condition: deal.amount > 50000.0
    title: "Big deal {deal.name}"
    message: "Deal {subject.id} is above 50k."
"""
#: Panels whose data the simulator must drive above zero (not just initialised series).
MUST_BE_NONZERO = (
    "Events/s", "Events/s by entity and op", "Dead letters/s by reason",
    "Alerts/s by rule and severity", "Latency: ingest to alert produced",
    "Latency: event time to alert produced", "Rule reloads by result", "Tracked records",
    "Top owners (1h, opt-in)", "Records produced/s by kind", "KPIs per team",
    "KPIs per region", "Active alerts", "Active alerts by rule", "Rule errors/s by rule",
    "Duplicates/s",
)  # fmt: skip


def scrape_config(worker_port: int) -> dict[str, Any]:
    """The repo's scrape configuration, pointed at the local worker, scraped every second."""
    config: dict[str, Any] = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "crm-pulse"]
    assert len(jobs) == 1, "prometheus.yml must have exactly one crm-pulse job"
    jobs[0]["scrape_interval"] = "1s"
    jobs[0]["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    return config


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed: run `make prometheus`"

    def start(worker_port: int) -> str:
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(scrape_config(worker_port)))
        port = free_port()
        log = open(tmp_path / "prometheus.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return url
            except OSError:
                time.sleep(0.3)
        pytest.fail("prometheus not ready:\n" + (tmp_path / "prometheus.log").read_text()[-3000:])

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(series["value"][1]) for series in result]
    return [v for v in values if math.isfinite(v)]


def all_panel_queries() -> list[tuple[str, str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for title, ref, expr in panel_queries(board):
            out.append((board["title"], title, ref, expr.replace("$__rate_interval", RATE_WINDOW)))
    return out


def count_panels() -> int:
    return sum(
        1
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        if panel["type"] != "row"
    )


class Feeder:
    """Simulator events at a steady rate in a background thread, plus a few broken ones."""

    def __init__(self, settings: Settings, topic: str, rate: float) -> None:
        self.settings, self.topic, self.rate = settings, topic, rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            stop = asyncio.Event()

            async def watch() -> None:
                while not self._stop.is_set():
                    await asyncio.sleep(0.2)
                stop.set()

            watcher = asyncio.create_task(watch())
            self.sent = await simulate(self.settings, self.topic, rate=self.rate, seed=11,
                                       stop=stop)  # fmt: skip
            await watcher

        asyncio.run(main())

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_every_dashboard_query_returns_data(
    worker_factory: WorkerFactory,
    prometheus_factory: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    queries = all_panel_queries()
    assert len(DASHBOARDS) == 3 and queries, "the generated dashboards are missing"
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in (REPO / "rules").glob("*.yaml"):
        shutil.copy(path, rules / path.name)
    (rules / "extra.yaml").write_text(EXTRA_RULES)
    worker = worker_factory(
        rules_dir=str(rules),
        faust_metrics_enabled="true",
        metrics_owner_label="true",
        housekeeping_interval_s="1",
    )
    s = worker.settings
    prom = prometheus_factory(s.web_port)
    broken = [(b"bad-%d" % i, b'{"event_id": "x", "entity": ') for i in range(5)]
    twice = event_bytes(
        event_id="dup-1",
        source="test",
        entity="lead",
        entity_id="L-1",
        op="create",
        occurred_at="2026-03-02T09:00:00+00:00",
        fields={"x": 1},
    )
    with Feeder(s, s.events_topic, rate=150.0) as feeder:
        missing: list[str] = []
        deadline = time.monotonic() + 150
        while True:
            # broken events keep the dead-letter rate above zero within every rate window
            run_sync(produce(s.bootstrap_servers, s.events_topic, [*broken, twice, twice]))
            time.sleep(3)
            results = {q: query(prom, q[3]) for q in queries}
            missing = [f"{q[0]} / {q[1]} [{q[2]}]: {q[3]}" for q, r in results.items()
                       if not finite_values(r)]  # fmt: skip
            nonzero = {q[1] for q, r in results.items() if any(v != 0 for v in finite_values(r))}
            lacking = [t for t in MUST_BE_NONZERO if t not in nonzero]
            if (not missing and not lacking) or time.monotonic() > deadline:
                break
    zero_only = sorted({q[1] for q in queries} - nonzero)
    elapsed = time.monotonic() - started
    with capsys.disabled():  # shown in the CI log, not only on failure
        print(
            f"\nchecked {len(queries)} panel queries of {count_panels()} panels in "
            f"{len(DASHBOARDS)} dashboards against Prometheus: {len(queries) - len(missing)} "
            f"returned data, none skipped; {feeder.sent} simulated events; {elapsed:.1f}s\n"
            f"panels whose series exist but stayed at 0 in this run: {zero_only}"
        )
    assert not missing, "queries without data:\n" + "\n".join(missing) + "\n" + worker.log_tail()
    assert not lacking, f"panels that never left 0: {lacking}"
    targets = query(prom, 'up{job="crm-pulse"}')
    assert [float(t["value"][1]) for t in targets] == [1.0]
