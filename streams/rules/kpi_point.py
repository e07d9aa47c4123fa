"""A tolerant reader of ``crm.kpis`` snapshots: only the fields KPI rules need (pure).

Reads ``kpi``, ``scope {kind, id}``, ``window {kind, start, end}``, ``value`` (number or
null), ``trust {value}``, ``untrusted`` and ``computed_at``; ignores everything else, so
new snapshot fields never break alerting. A snapshot missing ``kpi`` or ``scope`` is
refused with a reason (counted, never raised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class KpiPoint:
    kpi: str
    scope_kind: str
    scope_id: str
    window: str
    value: float | None
    trust: float | None
    untrusted: bool
    computed_at: datetime
    window_end: str | None = None

    @property
    def series(self) -> str:
        """One id per series: ``kpi|scope_kind:scope_id|window``."""
        return f"{self.kpi}|{self.scope_kind}:{self.scope_id}|{self.window}"

    @property
    def scope(self) -> str:
        return f"{self.scope_kind}:{self.scope_id}"

    def is_trusted(self, min_trust: float) -> bool:
        if self.untrusted:
            return False
        return self.trust is None or self.trust >= min_trust

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi, "scope": {"kind": self.scope_kind, "id": self.scope_id},
            "window": {"kind": self.window, "end": self.window_end}, "value": self.value,
            "trust": {"value": self.trust}, "untrusted": self.untrusted,
            "computed_at": self.computed_at.isoformat(),
        }  # fmt: skip


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_point(data: Any, now: datetime) -> KpiPoint | str:
    """A :class:`KpiPoint` from decoded JSON, or the reason it cannot be read."""
    if not isinstance(data, dict):
        return "not_an_object"
    kpi = data.get("kpi")
    scope = data.get("scope")
    if not isinstance(kpi, str) or not kpi:
        return "missing_kpi"
    if not isinstance(scope, dict) or not scope.get("kind"):
        return "missing_scope"
    raw_window = data.get("window")
    window: dict[str, Any] = raw_window if isinstance(raw_window, dict) else {}
    raw_value = data.get("value")
    value: float | None = None
    if isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
        value = float(raw_value) if math.isfinite(raw_value) else None
    trust_obj = data.get("trust")
    trust: float | None = None
    if isinstance(trust_obj, dict) and isinstance(trust_obj.get("value"), int | float):
        trust = float(trust_obj["value"])
    elif isinstance(trust_obj, int | float) and not isinstance(trust_obj, bool):
        trust = float(trust_obj)
    return KpiPoint(
        kpi=kpi,
        scope_kind=str(scope["kind"]),
        scope_id=str(scope.get("id") or "all"),
        window=str(window.get("kind") or "none"),
        value=value,
        trust=trust,
        untrusted=bool(data.get("untrusted", False)),
        computed_at=_time(data.get("computed_at")) or now,
        window_end=str(window["end"]) if window.get("end") else None,
    )


def decode_point(raw: bytes | None, now: datetime) -> KpiPoint | str:
    if not raw:
        return "empty"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json"
    return read_point(data, now)
