"""Stopping child processes that run in their own process group (broker, workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any


def stop_process_group(
    proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Send ``sig`` to the process group of ``proc``, wait, then SIGKILL what lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
