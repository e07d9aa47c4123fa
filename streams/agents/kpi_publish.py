"""Publication of the KPI snapshots: one round over the dirty scopes, the pause between
rounds, and the Prometheus gauges of the current windows (the ``publish`` task of
:mod:`streams.agents.kpis`)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import date
from typing import Any

import orjson

from streams.kpis.runtime import KpiRuntime
from streams.kpis.windows import day_of, day_of_date
from streams.produce import send_keyed
from streams.runtime.container import Runtime

GAUGE_SCOPES = ("global", "region", "team")


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


def publish_pause(spent: float, interval: float, max_share: float) -> float:
    """Seconds to wait after a publication round that took ``spent`` seconds: the interval,
    or longer so that rounds take at most ``max_share`` of the time."""
    return max(interval - spent, spent * (1.0 - max_share) / max_share, 0.0)


#: Longest stretch a publication round computes snapshots without letting the ingest path
#: (and every other task) run.
PUBLISH_SLICE_S = 0.005
#: Snapshots encoded, sent and acknowledged together (about 300 KB): a round publishes
#: chunk after chunk, so that the alerts of the batches judged meanwhile are not queued
#: behind the whole round in the producer.
PUBLISH_CHUNK = 500


async def publish_now(pulse: Runtime, runtime: KpiRuntime, topic: Any) -> int:
    """One publication round. Snapshots are computed one scope at a time, and the round
    yields to the event loop every ``PUBLISH_SLICE_S``: a round over hundreds of scopes
    would otherwise hold back the batches (and their alerts) for its whole duration. The
    caller spaces rounds by their wall-clock duration, turns of other tasks included."""
    snaps: list[tuple[str, dict[str, Any]]] = []
    slice_started = time.monotonic()
    for part in runtime.collect_parts():
        snaps.extend(part)
        if time.monotonic() - slice_started > PUBLISH_SLICE_S:
            await asyncio.sleep(0)
            slice_started = time.monotonic()
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
        await asyncio.gather(*futures)
        pulse.metrics.kpi_snapshots.inc(len(chunk))
        set_gauges(pulse, [body for _, body in chunk], watermark_day)
    return len(snaps)
