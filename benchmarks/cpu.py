"""CPU used over a phase of a benchmark, from ``/proc`` (Linux): by the whole machine and
by one process, in cores (1.0 = one core busy all along).

A latency figure means little without the load beside it: a worker near saturation, or a
broker busy with something else (compacting the topics of earlier phases, flushing their
segments), makes a tail that is not the worker's path. :class:`CpuMeter` says which."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_s() -> tuple[float, float]:
    """CPU seconds spent busy by every core since boot, and waiting for I/O (``/proc/stat``'s
    cpu line: busy is the total less idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    iowait = ticks[4] if len(ticks) > 4 else 0
    # guest time is already counted in user and nice
    return (sum(ticks[:8]) - ticks[3] - iowait) / _TICKS, iowait / _TICKS


def _dirty_mib() -> float:
    """Page cache waiting to be written to disk (``Dirty`` + ``Writeback``), MiB."""
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Dirty", "Writeback"):
            total += int(rest.split()[0])
    return round(total / 1024, 1)


def _process_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its threads so far, 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    after = text.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(after[11]) + int(after[12])) / _TICKS


@dataclass
class CpuMeter:
    """Started when made; :meth:`read` gives the cores used since by the machine, by
    ``pid`` and by everything else."""

    pid: int
    _t0: float = 0.0
    _machine0: tuple[float, float] = (0.0, 0.0)
    _process0: float = 0.0
    _dirty0: float = 0.0

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = _machine_s()
        self._process0 = _process_s(self.pid)
        self._dirty0 = _dirty_mib()

    def read(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._t0, 1e-9)
        busy, iowait = _machine_s()
        machine = (busy - self._machine0[0]) / wall
        process = (_process_s(self.pid) - self._process0) / wall
        return {
            "cores": float(os.cpu_count() or 1),
            "machine_busy_cores": round(machine, 2),
            "worker_cores": round(process, 2),
            "others_cores": round(max(machine - process, 0.0), 2),
            "iowait_cores": round((iowait - self._machine0[1]) / wall, 2),
            "dirty_mib_start": self._dirty0,
            "dirty_mib_end": _dirty_mib(),
        }


def wait_quiet(
    busy_below: float = 0.15, seconds: int = 3, budget_s: float = 180.0
) -> tuple[float, list[float]]:
    """Wait until the whole machine has used less than ``busy_below`` cores in each of
    ``seconds`` consecutive seconds, ``budget_s`` at most; returns the time waited and the
    cores used in each second. A broker compacting and flushing what earlier phases wrote
    keeps a core busy for a while after them: a latency phase started meanwhile measures
    that housekeeping too."""
    started = time.monotonic()
    samples: list[float] = []
    quiet = 0
    before = _machine_s()[0]
    while quiet < seconds and time.monotonic() - started < budget_s:
        time.sleep(1.0)
        now = _machine_s()[0]
        samples.append(round(now - before, 2))
        before = now
        quiet = quiet + 1 if samples[-1] < busy_below else 0
    return time.monotonic() - started, samples
