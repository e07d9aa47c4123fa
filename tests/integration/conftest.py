"""Integration fixtures: one real Apache Kafka (KRaft) per session, workers as subprocesses.

The broker is assembled from Maven Central jars by :mod:`streams.runtime.broker`. If it cannot
start, every integration test fails with the broker's log tail: never a skip.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streams.processes import stop_process_group
from streams.runtime.broker import BrokerError, LocalKafka, free_port
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    cache = Path(os.environ.get("CRM_PULSE_CACHE_DIR", Path.home() / ".cache" / "crm-pulse"))
    broker = LocalKafka(
        cache_dir=cache,
        version=os.environ.get("CRM_PULSE_KAFKA_VERSION", "4.1.1"),
        work_dir=tmp_path_factory.mktemp("kafka"),
    )
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start:\n{exc}", pytrace=False)
    yield broker
    broker.stop()


@dataclass
class WorkerProcess:
    """A ``crm-pulse worker`` subprocess with its own topics, group and port."""

    settings: Settings
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def start_process(self) -> subprocess.Popen[bytes]:
        """Start the worker process without waiting for it to be ready."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self.proc

    def start(self, ready_timeout: float = 90.0) -> WorkerProcess:
        self.start_process()
        assert self.proc is not None
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.http_status("/ready") == 200:
                return self
            time.sleep(0.3)
        pytest.fail(f"worker not ready after {ready_timeout}s:\n{self.log_tail()}")

    def http_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def http_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            return str(resp.read().decode())

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return "(no worker log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, sig, timeout)

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        self.stop(signal.SIGKILL)


WorkerFactory = Callable[..., WorkerProcess]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def worker_factory(kafka: LocalKafka, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start workers on fresh, uuid-suffixed topics: ``worker_factory(**env_overrides)``.

    Workers made by one call of the fixture share topics and consumer group (same test),
    so a second worker can take over after a crash.
    """
    suffix = uuid.uuid4().hex[:8]
    workers: list[WorkerProcess] = []
    base_env = {
        "CRM_PULSE_BROKER": f"kafka://{kafka.bootstrap}",
        "CRM_PULSE_APP_ID": f"crm-pulse-test-{suffix}",
        "CRM_PULSE_TOPIC_PREFIX": f"t{suffix}",
        "CRM_PULSE_TOPIC_PARTITIONS": "2",
        "CRM_PULSE_RULES_DIR": str(REPO / "rules"),
        "CRM_PULSE_API_TOKEN": "test-token-" + suffix,
        "CRM_PULSE_LOG_LEVEL": "info",
        "CRM_PULSE_CACHE_DIR": str(kafka.cache_dir),
    }

    def make(start: bool = True, **overrides: str) -> WorkerProcess:
        env = dict(os.environ)
        env.update(base_env)
        env["CRM_PULSE_WEB_PORT"] = str(free_port())
        env["CRM_PULSE_DATA_DIR"] = str(tmp_path / f"data-{len(workers)}")
        env.update({f"CRM_PULSE_{k.upper()}": v for k, v in overrides.items()})
        values = {k.removeprefix("CRM_PULSE_").lower(): v for k, v in env.items()
                  if k.startswith("CRM_PULSE_") and k != "CRM_PULSE_CACHE_DIR"}  # fmt: skip
        settings = Settings(**values)  # type: ignore[arg-type]  # strings, read as from the env
        run_sync(ensure_topics(settings))
        worker = WorkerProcess(settings, env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in workers:
        worker.stop()
