"""The KPI side of a worker without Faust: watermark, dirty scopes, change-only publishing.

:class:`KpiRuntime` is driven by the agent (``apply``) and the publish timer
(``collect``); it is tested with a plain dict as table and a :class:`ManualClock`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.clock import Clock, utcnow
from streams.contracts.kpis import KpiSnapshot
from streams.kpis.catalog import Catalog
from streams.kpis.compute import Context
from streams.kpis.facts import EventFacts
from streams.kpis.store import ApplyResult, KpiStore, snapshots, windows_to_publish
from streams.kpis.windows import day_of, dt_of

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
            if self.watermark is not None else -(10**9)
        )  # fmt: skip
        result = self.store.apply(scope, events, late_before)
        self.applied += result.applied
        self.duplicates += result.duplicates
        self.late += result.late
        if result.dirty_from is not None:
            old = self.dirty.get(scope)
            self.dirty[scope] = result.dirty_from if old is None else min(old, result.dirty_from)
        return result

    def collect(self) -> list[KpiSnapshot]:
        """Snapshots of the dirty scopes whose content changed since last published."""
        if not self.dirty or self.watermark is None:
            return []
        dirty, self.dirty = self.dirty, {}
        wm = datetime.fromtimestamp(self.watermark, tz=dt_of(0).tzinfo)
        wd = day_of(self.watermark)
        now = self.clock()
        out: list[KpiSnapshot] = []
        for scope, dirty_from in sorted(dirty.items()):
            data = self.store.load(scope)
            if not data.days:
                continue
            windows = windows_to_publish(
                self.catalog.windows, data.days[0], dirty_from, wd, self.recent_days
            )
            for snap in snapshots(data, windows, self.catalog, self.context, watermark=wm,
                                  trust_floor=self.trust_floor, computed_at=now):  # fmt: skip
                body = snap.model_dump(mode="json")
                key = snap.key()
                previous = self.published.get(key)
                if previous is not None and _same(previous, body):
                    continue
                self.published[key] = body
                out.append(snap)
        return out

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
        out.sort(key=lambda b: (b["kpi"], b["scope"]["kind"], b["scope"]["id"],
                                b["window"]["kind"], b["window"]["start"]))  # fmt: skip
        return out

    def status(self) -> dict[str, Any]:
        return {
            "watermark": None if self.watermark is None
            else datetime.fromtimestamp(self.watermark, tz=dt_of(0).tzinfo).isoformat(),
            "messages_sent": self.messages_sent,
            "messages_applied": self.messages_applied,
            "events_applied": self.applied,
            "duplicates": self.duplicates,
            "late": self.late,
            "dirty_scopes": len(self.dirty),
            "published": len(self.published),
        }


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from when it was computed and the watermark of the computation."""
    skip = {"computed_at", "watermark"}
    return all(a.get(k) == b.get(k) for k in set(a) | set(b) if k not in skip)
