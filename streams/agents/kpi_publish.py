"""Publication of the KPI snapshots: one round over the dirty scopes, paced to a share of
the worker's time, and the Prometheus gauges of the current windows (the ``publish`` task
of :mod:`streams.agents.kpis`)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import orjson

from streams.errors import PulseError
from streams.kpis.runtime import KpiRuntime
from streams.kpis.windows import day_of, day_of_date
from streams.produce import send_keyed
from streams.runtime.container import Runtime

GAUGE_SCOPES = ("global", "region", "team")
T = TypeVar("T")


def set_gauges(pulse: Runtime, snaps: list[dict[str, Any]], watermark_day: int) -> None:
    """Gauges for the windows that contain the watermark (bounded labels)."""
    kinds = GAUGE_SCOPES + (("owner",) if pulse.settings.kpi_metrics_per_owner else ())
    m = pulse.metrics
    for snap in snaps:
        scope, window = snap["scope"], snap["window"]
        try:
            start = day_of_date(date.fromisoformat(window["start"][:10]))
            end = day_of_date(date.fromisoformat(window["end"][:10]))
        except ValueError:  # a window at the calendar's end: no current gauge
            continue
        if scope["kind"] not in kinds or not start <= watermark_day < end:
            continue
        kpi = snap["kpi"] + "".join(f":{v}" for _, v in sorted(snap["dimensions"].items()))
        labels = {
            "kpi": kpi,
            "scope_kind": scope["kind"],
            "scope_id": scope["id"],
            "window": window["kind"],
        }
        value = snap["value"]
        m.kpi_value.labels(**labels).set(math.nan if value is None else value)
        m.kpi_trust.labels(**labels).set(snap["trust"]["value"])


#: Longest stretch a publication round computes, encodes or sends snapshots without
#: letting the ingest path (and every other task) run.
PUBLISH_SLICE_S = 0.005
#: Snapshots encoded, sent and acknowledged together (about 60 KB): a round publishes
#: chunk after chunk, so that the alerts of the batches judged meanwhile are not queued
#: behind the whole round in the producer.
PUBLISH_CHUNK = 100


class Pacer:
    """Keeps a publication round to at most ``share`` of the worker's time.

    The round calls :meth:`tick` between steps of work. Once a slice of work
    (``slice_s``) is spent, it pauses for ``spent * (1 - share) / share``, so that
    the ingest path gets the rest of the time whatever the round's size. A round
    over every scope (the watermark moved to a new day: about 17,000 snapshots, about
    a second of CPU at the benchmark's size) then takes about ten seconds, once a day,
    instead of holding the alerts of that second back. Time spent waiting for the
    broker (:meth:`wait`) is not work."""

    def __init__(
        self,
        share: float,
        slice_s: float = PUBLISH_SLICE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.share = share
        self.slice_s = slice_s
        self.clock = clock
        self.sleep = sleep
        self._slice = 0.0  # work of the current slice, not paused for yet
        self._since = clock()

    def _account(self) -> None:
        now = self.clock()
        self._slice += now - self._since
        self._since = now

    async def _pause_if_spent(self) -> None:
        if self._slice >= self.slice_s:
            await self.sleep(self._slice * (1.0 - self.share) / self.share)
            self._slice = 0.0
            self._since = self.clock()

    async def tick(self) -> None:
        """A step of work is done: pause if this slice is spent."""
        self._account()
        await self._pause_if_spent()

    async def wait(self, work: Awaitable[T]) -> T:
        """Await ``work`` (the broker): the work so far counts, the wait does not."""
        await self.tick()
        try:
            return await work
        finally:
            self._since = self.clock()


class PublicationFailed(PulseError):
    """A chunk of snapshots was refused, or not acknowledged within its bound: the worker
    stops, as for a failed shipment. Retrying in the next round would lose the chunk's
    snapshots (their scopes are no longer dirty) and, with a broker that no longer answers,
    leave the KPIs stopped without a word; after the restart every scope is published."""


async def acknowledged(futures: list[asyncio.Future[Any]], bound: float) -> None:
    """Wait for the broker's acks of ``futures``, at most ``bound`` seconds."""
    try:
        await asyncio.wait_for(asyncio.gather(*futures), bound)
    except TimeoutError as exc:
        raise PublicationFailed(
            f"the broker acknowledged no KPI snapshot within {bound:g} s "
            "(2 x CRM_PULSE_PRODUCER_REQUEST_TIMEOUT_S)"
        ) from exc
    except Exception as exc:
        raise PublicationFailed(f"the broker did not take KPI snapshots: {exc!r}") from exc


async def publish_now(
    pulse: Runtime, runtime: KpiRuntime, topic: Any, pacer: Pacer | None = None
) -> int:
    """One publication round, paced by ``pacer`` (default: the settings' share).
    Snapshots are computed one scope at a time, then encoded, sent and acknowledged a
    chunk at a time, with the gauges set per chunk."""
    pacer = pacer or Pacer(pulse.settings.kpi_publish_max_share)
    snaps: list[tuple[str, dict[str, Any]]] = []
    for part in runtime.collect_parts():
        snaps.extend(part)
        await pacer.tick()
    if not snaps:
        return 0
    producer = pulse.app.producer._ensure_producer()
    name = topic.get_topic_name()
    assert runtime.watermark is not None  # snapshots exist once facts have moved it
    watermark_day = day_of(runtime.watermark)
    for start in range(0, len(snaps), PUBLISH_CHUNK):
        chunk = snaps[start : start + PUBLISH_CHUNK]
        futures = await send_keyed(
            producer, name, ((key.encode(), orjson.dumps(body)) for key, body in chunk)
        )
        # one chunk in flight at a time: the producer sends one request per broker at once,
        # and a round of ~17k snapshots sent in one go was one long queue in front of the
        # alerts of the batches judged meanwhile; the gauges are set a chunk at a time too
        await pacer.wait(acknowledged(futures, pulse.settings.ack_bound_s))
        pulse.metrics.kpi_snapshots.inc(len(chunk))
        set_gauges(pulse, [body for _, body in chunk], watermark_day)
        await pacer.tick()
    return len(snaps)
