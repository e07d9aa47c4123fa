"""The KPI side of a worker without Faust: watermark, dirty scopes, change-only publishing.

:class:`KpiRuntime` is driven by the agent (``apply``) and the publish timer
(``collect``); it is tested with a plain dict as table and a :class:`ManualClock`.

The watermark never goes past the clock plus ``max_future_skew_s`` (nor past 9999-11-30):
a fact dated later is refused by the facts and the store (``out_of_range``), and a
watermark carried by a message or recovered from the table is clamped. Publication is
bounded per scope (``windows_to_publish``) and a scope whose snapshots fail is skipped
for the round (``publish/processing_error``), never the round.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from math import isfinite
from typing import Any

from streams.clock import Clock, utcnow
from streams.kpis.catalog import Catalog
from streams.kpis.compute import Context
from streams.kpis.facts import EventFacts
from streams.kpis.publish import Signatures, snapshots, windows_to_publish
from streams.kpis.skips import Skips
from streams.kpis.store import ApplyResult, KpiStore
from streams.kpis.windows import (
    DAY_S,
    MAX_DAY,
    TUMBLING,
    day_of,
    day_of_date,
    dt_of,
    months_back,
)

#: Latest watermark at all (end of :data:`MAX_DAY`), in epoch seconds.
MAX_WATERMARK = float((MAX_DAY + 1) * DAY_S - 1)


def iso_of(ts: float) -> str:
    """ISO text of an epoch-seconds time, clamped to 1970 .. 9999 (never raises)."""
    clamped = min(max(ts, 0.0), MAX_WATERMARK) if isfinite(ts) else 0.0
    return datetime.fromtimestamp(clamped, tz=UTC).isoformat()


FILTERS = ("kpi", "scope_kind", "scope_id", "window")


@dataclass
class KpiRuntime:
    store: KpiStore
    catalog: Catalog
    context: Context
    allowed_lateness_days: int = 7
    trust_floor: float = 0.5
    recent_days: int = 14
    recent_months: int = 36
    #: how far ahead of the clock an event time may be (the contract's future skew)
    max_future_skew_s: float = 86400.0
    clock: Clock = utcnow
    skips: Skips = field(default_factory=Skips)
    watermark: float | None = None
    dirty: dict[str, int] = field(default_factory=dict)
    #: last published snapshot per key (JSON dict), for change-only publishing and GET /kpis
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages_sent: int = 0
    messages_applied: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    refused: int = 0
    published_day: int | None = None
    _scopes: set[str] | None = None
    _signatures: Signatures = field(default_factory=dict)
    #: keys of ``published`` per tumbling window ``(kind, start day)``, to forget old ones
    _published_windows: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    def known_scopes(self) -> set[str]:
        if self._scopes is None:
            self._scopes = set(self.store.scopes())
        return self._scopes

    def latest_allowed(self) -> float:
        """Latest event time counted now: the clock plus the future skew."""
        return min(self.clock().timestamp() + self.max_future_skew_s, MAX_WATERMARK)

    def last_day(self) -> int:
        """Latest event day counted now (facts dated later are ``out_of_range``)."""
        return day_of(self.latest_allowed())

    def recover_watermark(self) -> None:
        """After a restart: the latest event day stored in any scope (clamped as
        :meth:`advance` does: a table written before the clamp existed is safe too)."""
        if self.watermark is not None:
            return
        days = (self.store.stored_meta(s)["last"] for s in self.store.scopes())
        known = [d for d in days if d is not None]
        if known:
            self.advance(dt_of(max(known)).timestamp())

    def advance(self, event_time: float) -> None:
        """Move the watermark to ``event_time`` if later, never past :meth:`latest_allowed`
        (a time that is not a finite number is ignored)."""
        if isinstance(event_time, bool) or not isinstance(event_time, int | float):
            return
        try:
            event_time = float(event_time)
        except OverflowError:  # an integer beyond any float
            return
        if not isfinite(event_time):
            return
        event_time = min(event_time, self.latest_allowed())
        if self.watermark is None or event_time > self.watermark:
            self.watermark = event_time

    def apply(self, scope: str, events: Iterable[EventFacts]) -> ApplyResult:
        late_before = (
            day_of(self.watermark) - self.allowed_lateness_days
            if self.watermark is not None
            else -(10**9)
        )
        result = self.store.apply(scope, events, late_before, self.last_day(), self.skips)
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.late += result.late
        self.refused += result.refused
        if result.dirty_from is not None:
            self.known_scopes().add(scope)
            old = self.dirty.get(scope)
            self.dirty[scope] = result.dirty_from if old is None else min(old, result.dirty_from)
        return result

    def collect(self) -> list[tuple[str, dict[str, Any]]]:
        """Snapshots of the dirty scopes whose content changed since last published."""
        return [snap for part in self.collect_parts() for snap in part]

    def collect_parts(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """:meth:`collect`, one dirty scope at a time, so that a caller on the event loop
        can let other tasks run between scopes (a round over every scope takes a while).
        The dirty set is taken when the first part is asked for; facts applied meanwhile
        mark their scopes dirty for the next round."""
        if self.watermark is None or (
            not self.dirty and day_of(self.watermark) == self.published_day
        ):
            return
        self.watermark = min(self.watermark, self.latest_allowed())
        wm = datetime.fromtimestamp(self.watermark, tz=UTC)
        wd = day_of(self.watermark)
        forget = self.published_day != wd
        if self.published_day is not None and wd > self.published_day:
            # state KPIs (stale deals) and freshness move with the watermark alone: every
            # scope's windows from the last published watermark day on are recomputed
            for scope in self.known_scopes():
                old = self.dirty.get(scope)
                self.dirty[scope] = (
                    self.published_day if old is None else min(old, self.published_day)
                )
        self.published_day = wd
        if forget:
            self._forget_before(wd - self.recent_days - 7)
        dirty, self.dirty = self.dirty, {}
        now = self.clock()
        for scope, dirty_from in sorted(dirty.items()):
            try:
                out = self._scope_snapshots(scope, dirty_from, wd, wm, now)
            except Exception as exc:  # one scope's round, never the publication
                self.skips.note("publish", "processing_error", f"{scope}: {type(exc).__name__}")
                continue
            if out is not None:
                yield out

    def _scope_snapshots(
        self,
        scope: str,
        dirty_from: int,
        wd: int,
        wm: datetime,
        now: datetime,
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """The changed snapshots of one scope, or ``None`` when it holds no day."""
        data = self.store.load(scope)
        if not data.days:
            return None
        windows = windows_to_publish(
            self.catalog.windows,
            data.days[0],
            dirty_from,
            wd,
            self.recent_days,
            self.recent_months,
        )
        out = snapshots(
            data,
            windows,
            self.catalog,
            self.context,
            watermark=wm,
            trust_floor=self.trust_floor,
            computed_at=now,
            signatures=self._signatures,
        )
        published, index = self.published, self._published_windows
        for key, snap in out:
            if key not in published:
                window = snap["window"]
                if window["kind"] in TUMBLING:
                    start = day_of_date(date.fromisoformat(window["start"][:10]))
                    index.setdefault((window["kind"], start), []).append(key)
            published[key] = snap
        return out

    def _forget_before(self, day: int) -> None:
        """Drop old day/week windows, and month windows older than ``recent_months``, from
        memory (they stay on the topic and in the table): memory does not grow with the
        span of event dates."""
        month_day = months_back(self.published_day or day, max(self.recent_months, 1) - 1)

        def old(window: tuple[str, int], cutoff: int) -> bool:
            kind, start = window
            return (kind in ("day", "week") and start < cutoff) or (
                kind == "month" and start < month_day
            )

        for window in [w for w in self._published_windows if old(w, max(day, 0))]:
            for key in self._published_windows.pop(window):
                self.published.pop(key, None)
        for window in [w for w in self._signatures if old(w, day)]:
            del self._signatures[window]

    def query(self, filters: Mapping[str, str]) -> list[dict[str, Any]]:
        """Published snapshots matching ``kpi``, ``scope_kind``, ``scope_id``, ``window``."""
        out = []
        for body in self.published.values():
            if "kpi" in filters and body["kpi"] != filters["kpi"]:
                continue
            if "scope_kind" in filters and body["scope"]["kind"] != filters["scope_kind"]:
                continue
            if "scope_id" in filters and body["scope"]["id"] != filters["scope_id"]:
                continue
            if "window" in filters and body["window"]["kind"] != filters["window"]:
                continue
            out.append(body)
        out.sort(
            key=lambda b: (
                b["kpi"],
                b["scope"]["kind"],
                b["scope"]["id"],
                b["window"]["kind"],
                b["window"]["start"],
            )
        )
        return out

    def status(self) -> dict[str, Any]:
        return {
            "watermark": None if self.watermark is None else iso_of(self.watermark),
            "messages_sent": self.messages_sent,
            "messages_applied": self.messages_applied,
            "events_applied": self.applied,
            "duplicates": self.duplicates,
            "late": self.late,
            "refused": self.refused,
            "dirty_scopes": len(self.dirty),
            "published": len(self.published),
        }
