"""Can this worker still make progress? One answer for ``/health``, ``/ready`` and the exit.

:func:`read_vitals` takes a snapshot of the running Faust app (crash, stop, the consumer's
fetch-loop heartbeat, the shipper's progress, the agents and the shipper task);
:func:`problems` (pure) turns it into reasons. ``/health`` answers 503 with the reasons
when there are any; the worker (:mod:`streams.worker`) stops with exit code 1 when a
*fatal* one lasts (a crashed app, a dead fetch loop, agent or shipper). A stuck fetch loop
or shipper only fails ``/health``: it is a wait for the broker, which may come back (the
producer's request timeout then decides: a shipment not acknowledged in time crashes the
worker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from streams.runtime.container import Runtime
from streams.runtime.shipped_counts import ShipProgress

__all__ = ["Problem", "ShipProgress", "Vitals", "problems", "read_vitals"]


@dataclass(frozen=True)
class Vitals:
    """What the worker looks like right now (every field read from the running app)."""

    crashed: str | None = None  # the crash reason, when the app crashed
    stopping: bool = False  # a stop began (signal or crash)
    assigned: int = 0  # partitions assigned to this worker
    rebalancing: bool = False
    flow_active: bool = True  # False while Faust holds the fetch loop (recovery)
    fetch_age_s: float | None = None  # seconds since the fetch loop's last turn
    drain_error: str | None = None  # what the fetch loop died of
    ship_wait_s: float | None = None  # seconds the shipper has waited with no shipment done
    dead: tuple[str, ...] = ()  # agents / tasks that ended with an error or were cancelled


@dataclass(frozen=True)
class Problem:
    reason: str
    fatal: bool  # the worker cannot recover from it by itself: it stops (exit 1)


def problems(v: Vitals, stall_after_s: float) -> list[Problem]:
    """Why the worker cannot make progress (empty: it can)."""
    found: list[Problem] = []
    if v.crashed is not None:
        found.append(Problem(f"crashed: {v.crashed}", True))
    if v.stopping:
        found.append(Problem("stopping", False))
    if v.drain_error is not None:
        found.append(Problem(f"fetch loop died: {v.drain_error}", True))
    for name in v.dead:
        found.append(Problem(f"{name} is dead", True))
    stalled = (
        v.drain_error is None
        and v.assigned > 0
        and not v.rebalancing
        and v.flow_active
        and v.fetch_age_s is not None
        and v.fetch_age_s > stall_after_s
    )
    if stalled:
        age = f"{v.fetch_age_s:.0f}s (bound {stall_after_s:g}s)"
        found.append(Problem(f"fetch loop stuck: no turn for {age}", False))
    if v.ship_wait_s is not None and v.ship_wait_s > stall_after_s:
        wait = f"{v.ship_wait_s:.0f}s (bound {stall_after_s:g}s)"
        found.append(Problem(f"shipper stuck: no shipment acknowledged for {wait}", False))
    return found


def _ship_wait(pulse: Runtime, now: float) -> float | None:
    pending = pulse.shipper.pending  # queued or being shipped
    shipped = sum(
        sample.value
        for metric in pulse.metrics.ship_seconds.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )
    progress: ShipProgress = pulse.ship_progress
    return progress.observe(shipped, pending, now)


def _agent_failure(agent: Any) -> str | None:
    if agent is None or not agent._started.is_set() or agent.should_stop:
        return None
    if agent._crashed.is_set():
        return "crashed"
    tasks = [a.actor_task for a in list(agent._actors) if a.actor_task is not None]
    if tasks and all(t.done() for t in tasks):
        return "its actors ended"
    return None


def read_vitals(pulse: Runtime, *, stopping: bool = False, now: float | None = None) -> Vitals:
    """A snapshot of ``pulse``'s app (never raises: a failure to read is itself reported)."""
    app = pulse.app
    now = time.monotonic() if now is None else now
    crash = app.crash_reason
    consumer = getattr(app, "_consumer", None)  # never created here
    assigned = 0
    beat = None
    drain_error = None
    flow_active = True
    if consumer is not None:
        try:
            assigned = len(consumer.assignment())
        except Exception:  # not started yet
            assigned = 0
        beat = getattr(consumer, "fetch_beat", None)
        err = getattr(consumer, "drain_error", None)
        drain_error = repr(err) if err is not None else None
        flow_active = bool(getattr(consumer, "flow_active", True))
    dead: list[str] = []
    if not (stopping or app.should_stop):
        for name, agent in pulse.agents.items():  # every agent the container watches
            failure = _agent_failure(agent)
            if failure is not None:
                dead.append(f"agent {name} ({failure})")
        failure = pulse.shipper.failure()
        if failure is not None:
            dead.append(f"shipper ({failure})")
    return Vitals(
        crashed=repr(crash) if crash is not None else None,
        stopping=stopping or bool(app.should_stop),
        assigned=assigned,
        rebalancing=bool(app.rebalancing),
        flow_active=flow_active,
        fetch_age_s=None if beat is None else max(0.0, now - beat),
        drain_error=drain_error,
        ship_wait_s=_ship_wait(pulse, now),
        dead=tuple(dead),
    )
