"""The KPI side of a worker without Faust: watermark, dirty scopes, change-only publishing.

:class:`KpiRuntime` is driven by the agent (``apply``) and the publish timer
(``collect``); it is tested with a plain dict as table and a :class:`ManualClock`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.clock import Clock, utcnow
from streams.contracts.kpis import snapshot_key
from streams.kpis.catalog import Catalog
from streams.kpis.compute import Context
from streams.kpis.facts import EventFacts
from streams.kpis.store import ApplyResult, KpiStore, snapshots, windows_to_publish
from streams.kpis.windows import date_of, day_of, dt_of

FILTERS = ("kpi", "scope_kind", "scope_id", "window")


@dataclass
class KpiRuntime:
    store: KpiStore
    catalog: Catalog
    context: Context
    allowed_lateness_days: int = 7
    trust_floor: float = 0.5
    recent_days: int = 14
    clock: Clock = utcnow
    watermark: float | None = None
    dirty: dict[str, int] = field(default_factory=dict)
    #: last published snapshot per key (JSON dict), for change-only publishing and GET /kpis
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages_sent: int = 0
    messages_applied: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    published_day: int | None = None
    _scopes: set[str] | None = None
    _signatures: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)

    def known_scopes(self) -> set[str]:
        if self._scopes is None:
            self._scopes = set(self.store.scopes())
        return self._scopes

    def recover_watermark(self) -> None:
        """After a restart: the latest event day stored in any scope."""
        if self.watermark is not None:
            return
        days = [self.store.meta(s)["last"] for s in self.store.scopes()]
        known = [d for d in days if d is not None]
        if known:
            self.watermark = dt_of(max(known)).timestamp()

    def advance(self, event_time: float) -> None:
        if self.watermark is None or event_time > self.watermark:
            self.watermark = event_time

    def apply(self, scope: str, events: Iterable[EventFacts]) -> ApplyResult:
        late_before = (
            day_of(self.watermark) - self.allowed_lateness_days
            if self.watermark is not None
            else -(10**9)
        )
        result = self.store.apply(scope, events, late_before)
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.late += result.late
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
        wm = datetime.fromtimestamp(self.watermark, tz=dt_of(0).tzinfo)
        wd = day_of(self.watermark)
        if self.published_day is not None and wd > self.published_day:
            # state KPIs (stale deals) and freshness move with the watermark alone: every
            # scope's windows from the last published watermark day on are recomputed
            for scope in self.known_scopes():
                old = self.dirty.get(scope)
                self.dirty[scope] = (
                    self.published_day if old is None else min(old, self.published_day)
                )
        if self.published_day != wd:
            self._forget_before(wd - self.recent_days - 7)
        self.published_day = wd
        dirty, self.dirty = self.dirty, {}
        now = self.clock()

        def unchanged(ident: tuple[Any, ...], sig: tuple[Any, ...]) -> bool:
            if self._signatures.get(ident) == sig:
                return True
            self._signatures[ident] = sig
            return False

        for scope, dirty_from in sorted(dirty.items()):
            data = self.store.load(scope)
            if not data.days:
                continue
            out: list[tuple[str, dict[str, Any]]] = []
            windows = windows_to_publish(
                self.catalog.windows, data.days[0], dirty_from, wd, self.recent_days
            )
            for snap in snapshots(
                data,
                windows,
                self.catalog,
                self.context,
                watermark=wm,
                trust_floor=self.trust_floor,
                computed_at=now,
                unchanged=unchanged,
            ):
                key = snapshot_key(
                    snap["kpi"],
                    scope,
                    snap["window"]["kind"],
                    snap["window"]["start"][:10],
                    snap["dimensions"],
                )
                self.published[key] = snap
                out.append((key, snap))
            yield out

    def _forget_before(self, day: int) -> None:
        """Drop old day/week windows from memory (they stay on the topic and in the table)."""
        cutoff = date_of(day).isoformat()
        for key, body in list(self.published.items()):
            window = body["window"]
            if window["kind"] in ("day", "week") and window["start"][:10] < cutoff:
                del self.published[key]
        for ident in [i for i in self._signatures if i[2] in ("day", "week") and i[3] < day]:
            del self._signatures[ident]

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
            "watermark": None
            if self.watermark is None
            else datetime.fromtimestamp(self.watermark, tz=dt_of(0).tzinfo).isoformat(),
            "messages_sent": self.messages_sent,
            "messages_applied": self.messages_applied,
            "events_applied": self.applied,
            "duplicates": self.duplicates,
            "late": self.late,
            "dirty_scopes": len(self.dirty),
            "published": len(self.published),
        }
