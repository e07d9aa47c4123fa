"""The CRM Pulse worker as a black box: a ``crm-pulse worker`` subprocess configured by
``CRM_PULSE_*`` variables, observed through ``/metrics``, ``/proc`` and its Kafka topics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from streams.processes import stop_process_group
from streams.runtime.broker import free_port

REPO = Path(__file__).resolve().parents[1]

#: Counters whose sum is "events handled" (valid + refused to the DLQ + duplicates).
HANDLED = ("crm_pulse_events", "crm_pulse_invalid_events", "crm_pulse_duplicate_events")


def proc_status_bytes(pid: int, field_name: str = "VmHWM") -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` in bytes (VmHWM = peak resident set)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return None


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> sample name -> value summed over labels."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
    return sums


def handled(metrics: dict[str, float]) -> int:
    return int(sum(metrics.get(name + "_total", 0.0) for name in HANDLED))


@dataclass
class Worker:
    """One worker subprocess on its own topics, consumer group, port and data dir."""

    bootstrap: str
    prefix: str
    app_id: str
    rules_dir: Path
    work_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / f"{self.app_id}.log"

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-entity-state-changelog"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_PULSE_")}
        env.update(
            {
                "CRM_PULSE_BROKER": f"kafka://{self.bootstrap}",
                "CRM_PULSE_APP_ID": self.app_id,
                "CRM_PULSE_TOPIC_PREFIX": self.prefix,
                "CRM_PULSE_RULES_DIR": str(self.rules_dir),
                "CRM_PULSE_WEB_PORT": str(self.port),
                "CRM_PULSE_DATA_DIR": str(self.work_dir / f"data-{self.app_id}"),
                "CRM_PULSE_API_TOKEN": "bench-" + self.app_id,
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, ready_timeout: float = 120.0) -> Worker:
        self.port = free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=self.env(),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self._status("/ready") == 200:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker not ready after {ready_timeout}s:\n{self.log_tail()}")

    def _status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def get_json(self, path: str) -> Any:
        """The worker's JSON answer at ``path`` (e.g. ``/kpis/status``)."""
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return orjson.loads(resp.read())

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            return parse_metrics(resp.read().decode())

    def peak_rss(self) -> int | None:
        return None if self.proc is None else proc_status_bytes(self.proc.pid)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no worker log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, timeout=timeout)


@dataclass
class Progress:
    """What polling ``/metrics`` saw: first and last sample times with their counts."""

    first_t: float | None = None
    first_n: int = 0
    last_t: float = 0.0
    last_n: int = 0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return 0.0 if self.first_t is None else self.last_t - self.first_t

    @property
    def rate(self) -> float:
        """Events/s between the first sample showing progress and the last sample."""
        return (self.last_n - self.first_n) / self.seconds if self.seconds > 0 else 0.0


def watch(worker: Worker, expected: int, budget_s: float, interval: float = 0.5) -> Progress:
    """Poll ``/metrics`` until ``expected`` events are handled, or ``budget_s`` seconds after
    the first handled event (or after the start, if none ever is)."""
    progress = Progress()
    started = time.monotonic()
    while True:
        now = time.monotonic()
        try:
            metrics = worker.metrics()
        except OSError:
            metrics = progress.metrics
        count = handled(metrics)
        now = time.monotonic()
        if count > 0 and progress.first_t is None:
            progress.first_t, progress.first_n = now, count
        progress.last_t, progress.last_n, progress.metrics = now, count, metrics
        if count >= expected:
            return progress
        origin = progress.first_t if progress.first_t is not None else started
        if now - origin >= budget_s:
            return progress
        if worker.proc is None or worker.proc.poll() is not None:
            return progress
        time.sleep(interval)
