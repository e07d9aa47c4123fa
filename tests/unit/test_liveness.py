"""Liveness verdicts (pure), the exit watchdog and the exit codes of a stopping worker."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from streams.clock import utcnow
from streams.liveness import ShipProgress, Vitals, problems, read_vitals
from streams.metrics import Metrics
from streams.runtime.shipper import Shipper
from streams.settings import Settings
from streams.worker import EXIT_CRASHED, EXIT_OK, ExitWatchdog, exit_code

STALL = 60.0
RUNNING = Vitals(assigned=4, fetch_age_s=0.5)


def reasons(v: Vitals) -> list[tuple[str, bool]]:
    return [(p.reason, p.fatal) for p in problems(v, STALL)]


def test_a_running_worker_has_no_problem() -> None:
    assert problems(RUNNING, STALL) == []
    assert problems(Vitals(), STALL) == []  # starting: nothing assigned, no fetch yet


def test_a_crashed_app_is_fatal_with_its_reason() -> None:
    v = Vitals(crashed="KafkaTimeoutError()", assigned=4, fetch_age_s=0.1)
    assert reasons(v) == [("crashed: KafkaTimeoutError()", True)]


def test_a_stopping_worker_is_not_healthy_but_not_crashed() -> None:
    assert reasons(Vitals(stopping=True)) == [("stopping", False)]


def test_a_dead_fetch_loop_agent_or_shipper_is_fatal() -> None:
    v = Vitals(drain_error="TypeError('x')", dead=("agent ingest (crashed)", "shipper (cancelled)"))
    assert reasons(v) == [
        ("fetch loop died: TypeError('x')", True),
        ("agent ingest (crashed) is dead", True),
        ("shipper (cancelled) is dead", True),
    ]


@pytest.mark.parametrize(
    ("vitals", "stuck"),
    [
        (Vitals(assigned=2, fetch_age_s=STALL + 1), True),
        (Vitals(assigned=2, fetch_age_s=STALL - 1), False),  # within the bound
        (Vitals(assigned=0, fetch_age_s=STALL + 1), False),  # nothing to fetch
        (Vitals(assigned=2, fetch_age_s=STALL + 1, rebalancing=True), False),
        (Vitals(assigned=2, fetch_age_s=STALL + 1, flow_active=False), False),  # recovery
        (Vitals(assigned=2, fetch_age_s=None), False),  # the loop has not started yet
    ],
)
def test_a_stuck_fetch_loop_fails_health_only_while_it_should_turn(
    vitals: Vitals, stuck: bool
) -> None:
    found = reasons(vitals)
    assert bool(found) is stuck
    if stuck:
        assert found[0][0].startswith("fetch loop stuck: no turn for 61s")
        assert found[0][1] is False  # reported, not fatal: a supervisor decides


def test_exit_code_a_crash_wins_over_a_requested_stop() -> None:
    assert exit_code(crashed=False) == EXIT_OK == 0
    assert exit_code(crashed=True) == EXIT_CRASHED == 1


def test_watchdog_exits_after_the_grace_period_with_the_highest_code() -> None:
    exited: list[tuple[int, float]] = []
    done = threading.Event()

    def fake_exit(code: int) -> None:
        exited.append((code, time.monotonic()))
        done.set()

    dog = ExitWatchdog(grace=0.3, exit=fake_exit)
    assert not dog.armed
    started = time.monotonic()
    dog.arm(EXIT_OK, "SIGTERM")
    dog.arm(EXIT_CRASHED, "crashed while stopping")  # the code rises, the deadline stays
    assert done.wait(5)
    ((code, at),) = exited
    assert code == EXIT_CRASHED
    assert 0.25 <= at - started < 3


def test_watchdog_second_signal_exits_at_once() -> None:
    exited: list[int] = []
    done = threading.Event()
    dog = ExitWatchdog(grace=30, exit=lambda code: (exited.append(code), done.set()))
    dog.arm(EXIT_OK, "SIGTERM")
    dog.exit_now("second SIGTERM")
    assert done.wait(5)
    assert exited == [EXIT_OK]


EARLY = """
import sys, time
from streams.worker import ExitWatchdog, install_early_signal_handlers
install_early_signal_handlers(ExitWatchdog(5.0))
print("ready", flush=True)
while True:
    time.sleep(0.05)  # e.g. waiting for the broker
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_the_worker_runs_ends_the_process_with_code_0(sig: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", EARLY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_shipper_waiting_past_the_bound_fails_health_without_being_fatal() -> None:
    assert reasons(Vitals(assigned=2, fetch_age_s=0.1, ship_wait_s=STALL - 1)) == []
    ((reason, fatal),) = reasons(Vitals(assigned=2, fetch_age_s=0.1, ship_wait_s=STALL + 1))
    assert reason == "shipper stuck: no shipment acknowledged for 61s (bound 60s)"
    assert fatal is False


def test_ship_progress_counts_the_wait_only_while_work_is_pending_and_nothing_ships() -> None:
    p = ShipProgress()
    assert p.observe(shipped=0, pending=False, now=10.0) is None  # idle
    assert p.observe(shipped=0, pending=True, now=10.5) == 0.5  # work arrived
    assert p.observe(shipped=0, pending=True, now=15.0) == 5.0  # nothing shipped since
    assert p.observe(shipped=1, pending=True, now=16.0) == 0.0  # a shipment completed
    assert p.observe(shipped=1, pending=True, now=18.0) == 2.0
    assert p.observe(shipped=1, pending=False, now=19.0) is None


class _Flag:
    def __init__(self, value: bool) -> None:
        self.value = value

    def is_set(self) -> bool:
        return self.value


def fake_pulse(*, agent_crashed: bool = False, shipper_task: object = None) -> SimpleNamespace:
    """Just what :func:`read_vitals` reads of a running worker (with a real shipper)."""
    consumer = SimpleNamespace(
        assignment=lambda: {("t", 0), ("t", 1)}, fetch_beat=100.0, drain_error=None,
        flow_active=True,
    )  # fmt: skip
    agent = SimpleNamespace(
        _started=_Flag(True), _crashed=_Flag(agent_crashed), should_stop=False, _actors=set()
    )
    app = SimpleNamespace(crash_reason=None, should_stop=False, rebalancing=False,
                          _consumer=consumer)  # fmt: skip
    metrics = Metrics()
    shipper = Shipper(
        app=app, settings=Settings(), metrics=metrics, alerting=None,  # type: ignore[arg-type]
        entity_table=None, clock=utcnow, change_hooks=[],
    )  # fmt: skip
    shipper.task = shipper_task  # type: ignore[assignment]
    return SimpleNamespace(
        app=app,
        agents={"ingest": agent},
        shipper=shipper,
        metrics=metrics,
        ship_progress=ShipProgress(),
    )


def test_read_vitals_of_a_healthy_worker() -> None:
    v = read_vitals(fake_pulse(), now=101.5)
    assert (v.assigned, v.fetch_age_s, v.dead, v.crashed) == (2, 1.5, (), None)
    assert problems(v, STALL) == []


def test_read_vitals_sees_a_crashed_agent_and_a_dead_shipper() -> None:
    async def failing() -> None:
        raise RuntimeError("broker said no")

    async def scenario() -> Vitals:
        task = asyncio.create_task(failing())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert task.done()
        return read_vitals(fake_pulse(agent_crashed=True, shipper_task=task), now=101.0)

    v = asyncio.run(scenario())
    assert v.dead == ("agent ingest (crashed)", "shipper (RuntimeError('broker said no'))")
    assert all(p.fatal for p in problems(v, STALL))


def test_read_vitals_of_a_stopping_worker_reports_stopping_not_dead_parts() -> None:
    pulse = fake_pulse(agent_crashed=True)
    v = read_vitals(pulse, stopping=True, now=101.0)
    assert v.stopping and v.dead == ()
    assert reasons(v) == [("stopping", False)]
