"""The worker process: runs the Faust app, and always ends, with an exit code that says why.

* ``SIGTERM`` / ``SIGINT``: a requested stop. Faust stops cleanly (commits, leaves the
  group); the process exits with :data:`EXIT_OK`. A second signal exits at once.
* A crash (``app.crash``: a failed shipment, a dead fetch loop, agent or shipper, an error
  that stops a Faust service; or a fatal :mod:`streams.liveness` problem that lasts):
  the process exits with :data:`EXIT_CRASHED`, so a supervisor restarts it.
* Either way, Faust gets ``shutdown_grace_s`` to stop; then :class:`ExitWatchdog`, a thread
  that does not need the event loop, ends the process with the same code (``os._exit``).
  Faust's own shutdown can wait forever (e.g. for acks of records a crashed shipper will
  never send), which left workers hanging after ``LeaveGroup``.

The signal handlers are plain ``signal.signal`` handlers, so they run even while the event
loop is busy; they are installed before anything else (waiting for the broker included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import faust
from mode.utils.futures import maybe_cancel

from streams.errors import PulseError
from streams.liveness import problems, read_vitals

log = logging.getLogger(__name__)

#: A requested stop (SIGTERM, SIGINT), whether Faust stopped within the grace period or not.
EXIT_OK = 0
#: The worker crashed or could no longer make progress (the reason is logged as CRITICAL).
EXIT_CRASHED = 1

#: How long a fatal liveness problem must last before the worker stops (a Faust supervisor
#: may restart an agent meanwhile).
FATAL_AFTER_S = 2.0
#: Period of the liveness check.
CHECK_EVERY_S = 0.5


def exit_code(crashed: bool) -> int:
    """The process's exit code: a crash wins over a requested stop."""
    return EXIT_CRASHED if crashed else EXIT_OK


def _flush_streams() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


class ExitWatchdog:
    """Ends the process ``grace`` seconds after a stop began, whatever the loop is doing."""

    def __init__(self, grace: float, exit: Callable[[int], Any] = os._exit) -> None:
        self.grace = grace
        self._exit = exit
        self._lock = threading.RLock()  # re-entrant: a signal handler may interrupt arm()
        self._code: int | None = None
        self._deadline: float | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def armed(self) -> bool:
        return self._code is not None

    @property
    def code(self) -> int | None:
        return self._code

    def arm(self, code: int, reason: str, grace: float | None = None) -> None:
        """Start the countdown (once); a later call may raise the code or shorten the wait."""
        grace = self.grace if grace is None else grace
        with self._lock:
            deadline = time.monotonic() + grace
            first = self._code is None
            self._code = code if self._code is None else max(self._code, code)
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
            if first:  # a requested stop is routine (INFO), anything else is not
                level = logging.INFO if self._code == EXIT_OK else logging.WARNING
                log.log(level, "stopping (%s): exit code %d within %gs", reason, self._code, grace)
                self._thread = threading.Thread(
                    target=self._run, name="crm-pulse-exit-watchdog", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def exit_now(self, reason: str) -> None:
        """Exit right away with the armed code (a second signal)."""
        self.arm(self._code if self._code is not None else EXIT_OK, reason, grace=0.0)

    def _run(self) -> None:
        while True:
            with self._lock:
                left = (self._deadline or 0.0) - time.monotonic()
                code = self._code if self._code is not None else EXIT_CRASHED
            if left <= 0:
                break
            self._wake.wait(left)
            self._wake.clear()
        log.critical("the worker did not stop within its grace period: exiting with code %d", code)
        flusher = threading.Thread(target=_flush_streams, daemon=True)  # a full pipe must not
        flusher.start()  # keep the process alive
        flusher.join(1.0)
        self._exit(code)


class PulseWorker(faust.Worker):
    """Faust's worker with a bounded stop, exit codes, a liveness check and no spinner."""

    def __init__(self, pulse: Any, watchdog: ExitWatchdog, **kwargs: Any) -> None:
        super().__init__(pulse.app, **kwargs)
        self.pulse = pulse
        self.watchdog = watchdog
        self.spinner = None  # Faust's terminal spinner writes escape codes, even to pipes
        self.stall_after_s: float = pulse.settings.fetch_stall_s

    # --- signals ---------------------------------------------------------------------
    def _install_signal_handlers_unix(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_stop_signal)
        self.loop.add_signal_handler(signal.SIGUSR1, self._on_sigusr1)  # stack dump
        self.loop.add_signal_handler(signal.SIGUSR2, self._on_sigusr2)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.watchdog.armed:
            self.watchdog.exit_now(f"second {name}")
            return
        self.pulse.stopping = True
        self.watchdog.arm(exit_code(self._crashed_now()), f"{name} received")
        with contextlib.suppress(RuntimeError):  # a closed loop: the watchdog ends it
            self.loop.call_soon_threadsafe(self._stop_on_request, signal.Signals(signum))

    def _stop_on_request(self, sig: signal.Signals) -> None:
        self._flag_as_shutdown_by_signal()
        self._schedule_shutdown(sig)

    # --- crashes ---------------------------------------------------------------------
    def _crashed_now(self) -> bool:
        return self.crash_reason is not None or self.app.crash_reason is not None

    def _begin_crash_stop(self, reason: str) -> None:
        self.pulse.stopping = True
        log.critical("the worker stops: %s", reason)
        self.watchdog.arm(EXIT_CRASHED, reason)
        if not self._signal_stop_time:  # as a signal does: stop, then end start()
            self._signal_stop_time = self.loop.time()
            self._signal_stop_future = asyncio.ensure_future(self._stop_after_crash())

    async def _stop_after_crash(self) -> None:
        await self.stop()
        maybe_cancel(self._starting_fut)

    @faust.Service.task
    async def _liveness(self) -> None:
        """Stops the worker on a crash anywhere in the app (even while it starts or
        recovers) and on a fatal liveness problem that lasts ``FATAL_AFTER_S``."""
        bad_since: float | None = None
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            if self.watchdog.armed and not self._crashed_now():
                return  # a requested stop is under way
            crash = self.app.crash_reason or self.crash_reason
            if crash is not None:
                self._begin_crash_stop(f"crashed: {crash!r}")
                return
            try:
                vitals = read_vitals(self.pulse)
            except Exception:  # a check that fails must not crash a working worker
                log.exception("liveness check failed; retrying")
                continue
            fatal = [p.reason for p in problems(vitals, self.stall_after_s) if p.fatal]
            now = time.monotonic()
            if not fatal:
                bad_since = None
            elif bad_since is None:
                bad_since = now
            elif now - bad_since >= FATAL_AFTER_S:
                reason = "; ".join(fatal)
                self._begin_crash_stop(reason)
                await self.app.crash(WorkerFailure(reason))
                return

    def on_worker_shutdown(self) -> None:
        """Called once ``start()`` has returned (a stop or a crash): arm the watchdog."""
        super().on_worker_shutdown()
        self.pulse.stopping = True
        crashed = self._crashed_now()
        reason = f"crashed: {self.app.crash_reason or self.crash_reason!r}" if crashed else "stop"
        self.watchdog.arm(exit_code(crashed), reason)

    def _on_startup_end_spinner(self) -> None:
        log.info("worker ready")


class WorkerFailure(PulseError, RuntimeError):
    """The worker can no longer make progress (a dead fetch loop, agent or shipper)."""


def install_early_signal_handlers(watchdog: ExitWatchdog) -> None:
    """Before the Faust worker runs (waiting for the broker, building the app): a signal
    ends the process (nothing to clean up yet), bounded by the watchdog."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if watchdog.armed:
            watchdog.exit_now("second signal")
            return
        watchdog.arm(EXIT_OK, f"{signal.Signals(signum).name} received while starting")
        raise SystemExit(EXIT_OK)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def run_worker(pulse: Any, watchdog: ExitWatchdog, loglevel: str) -> NoReturn:
    """Run the worker until it stops; exits the process with :func:`exit_code`."""
    worker = PulseWorker(pulse, watchdog, loglevel=loglevel, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # what execute_from_commandline ends with
        code = exit_code(worker._crashed_now() or exc.code not in (0, None))
    except BaseException as exc:  # e.g. a crash whose reason is not an Exception
        log.critical("the worker ended with %r", exc)
        code = EXIT_CRASHED
    watchdog.arm(code, "event loop closed")
    _flush_streams()
    # Faust's loop is closed: threads it left (executors, clients) must not keep us alive
    os._exit(code)
