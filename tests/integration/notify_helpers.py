"""Real parts around the notifier: a recording HTTP receiver, Alertmanager, the notifier process.

The receiver stands in for a third party (Alertmanager's webhook receivers, a webhook
target). Its behaviour per path is scripted: fail the first N requests, answer slowly, hang.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from streams.processes import stop_process_group
from streams.runtime.broker import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "alertmanager" / "alertmanager.yml"


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """ThreadingHTTPServer on 127.0.0.1 recording every request."""

    fail_first: dict[str, int] = field(default_factory=dict)  # path prefix -> 503 count
    delay_s: dict[str, float] = field(default_factory=dict)  # path prefix -> answer delay
    hold: threading.Event | None = None  # when set on a request: hang until released
    received: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.on_request(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def on_request(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        with self.lock:
            self.attempts[path] = self.attempts.get(path, 0) + 1
            n = self.attempts[path]
        for prefix, delay in self.delay_s.items():
            if path.startswith(prefix):
                time.sleep(delay)
        for prefix, count in self.fail_first.items():
            if path.startswith(prefix) and n <= count:
                handler.send_response(503)
                handler.end_headers()
                return
        if self.hold is not None and path.startswith("/hold"):
            gate, self.hold = self.hold, None
            self.held = Received(path, body, dict(handler.headers), time.time())
            gate.wait(60)  # the notifier is killed meanwhile: no answer
            return
        with self.lock:
            self.received.append(Received(path, body, dict(handler.headers), time.time()))
        handler.send_response(200)
        handler.end_headers()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(
        self, done: Callable[[list[Received]], bool], timeout: float = 60.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                snapshot = list(self.received)
            if done(snapshot):
                return snapshot
            time.sleep(0.1)
        with self.lock:
            got = [(r.path, r.body[:300]) for r in self.received]
        raise AssertionError(f"receiver did not get what was expected in {timeout}s: {got}")

    def stop(self) -> None:
        self.server.shutdown()


def am_notifications(received: list[Received]) -> list[tuple[str, str, dict[str, str]]]:
    """(receiver path, alert status, labels) for every alert of every Alertmanager webhook."""
    out = []
    for r in received:
        for alert in r.json().get("alerts", []):
            out.append((r.path, alert["status"], alert["labels"]))
    return out


def alertmanager_config(receiver_url: str, group_wait: str, group_interval: str) -> str:
    """The shipped example with its receivers pointed at ``receiver_url`` and test timings."""
    config = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config["route"]["group_wait"] = group_wait
    config["route"]["group_interval"] = group_interval
    text = yaml.safe_dump(config)
    assert "http://127.0.0.1:5001" in text
    return text.replace("http://127.0.0.1:5001", receiver_url)


@dataclass
class Alertmanager:
    work: Path
    receiver_url: str
    group_wait: str = "1s"
    group_interval: str = "1s"
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Alertmanager:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary, "Alertmanager is not installed: run `make alertmanager`"
        config = self.work / "alertmanager.yml"
        text = alertmanager_config(self.receiver_url, self.group_wait, self.group_interval)
        config.write_text(text)
        self.port = self.port or free_port()
        log = open(self.work / "alertmanager.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={self.work / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("alertmanager not ready:\n" + self.log_tail())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return (self.work / "alertmanager.log").read_text(errors="replace")[-3000:]

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as resp:
            data: list[dict[str, Any]] = json.loads(resp.read())
            return data

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc)


@dataclass
class Notifier:
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Notifier:
        env = dict(os.environ)
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "notify"], env=env, cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return self

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, sig)


def alert_json(
    alert_id: str, status: str, sequence: int, subject: str, owner: str = "rep-1", **kw: Any
) -> tuple[bytes, bytes]:
    """``(key, value)`` of an AlertEvent as the engine publishes it."""
    body: dict[str, Any] = {
        "schema_version": 1, "alert_id": alert_id, "status": status,
        "rule_id": "deal-stage-backwards", "rule_version": 1, "severity": "warning",
        "subject": {"kind": "entity", "entity": "deal", "id": subject}, "owner_id": owner,
        "title": f"Deal {subject} moved back", "message": f"Deal {subject} moved back a stage",
        "fired_at": datetime.now(UTC).isoformat(), "sequence": sequence,
    }  # fmt: skip
    body.update(kw)
    return alert_id.encode(), json.dumps(body).encode()


ORG_YAML = """owners:
  rep-1: {manager: mgr-1, team: west-1, region: West}
  rep-2: {manager: mgr-2, team: east-1, region: East}
"""
