"""The README's demo command, run as a user would: alerts within 60 s, clean Ctrl-C, and a
first output that is what the README promises (no client errors, no terminal escapes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.runtime.broker import LocalKafka, free_port

REPO = Path(__file__).resolve().parents[2]
#: Log lines a new user reads as failures (alert lines print their severity in lower case).
ALARMING = re.compile(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback|Error:")
#: Terminal control: escape sequences (cursor hiding, colours) and backspaces (spinners).
TERMINAL_CONTROL = re.compile(r"[\x1b\x08]")


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line or environment mentions ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(proc.name))
    return found


def test_demo_prints_alerts_and_stops_cleanly_on_ctrl_c(kafka: LocalKafka) -> None:
    port = free_port()
    env = dict(os.environ, CRM_PULSE_WEB_PORT=str(port), CRM_PULSE_CACHE_DIR=str(kafka.cache_dir))
    started = time.monotonic()
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo", "--rate", "40"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    lines: list[str] = []
    work_dir = None
    first_alert_after = None
    health = None
    try:
        while time.monotonic() - started < 90:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"write API token in (\S+)/api-token", line)
            if match:
                work_dir = match.group(1)
            if line.startswith("FIRING") and first_alert_after is None:
                first_alert_after = time.monotonic() - started
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    health = r.status
            if first_alert_after is not None and len(lines) >= 25:  # a few more alerts
                break
    finally:
        first_seconds = "".join(lines)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = demo.communicate(timeout=60)
        lines.append(rest)
    output = "".join(lines)
    alarming = [line for line in first_seconds.splitlines() if ALARMING.search(line)]
    assert alarming == [], first_seconds
    assert not TERMINAL_CONTROL.search(output), repr(output[-3000:])
    assert first_alert_after is not None and first_alert_after < 60, output[-3000:]
    assert health == 200
    assert demo.returncode == 0, output[-3000:]
    assert "demo stopped" in output
    assert work_dir is not None
    time.sleep(0.5)
    assert processes_mentioning(work_dir) == [], "the demo left processes behind"
