"""``KpiSnapshot``: the JSON contract of ``crm.kpis`` (compacted, key = :meth:`key`).

One value of one KPI (catalog id) in one scope (owner / team / region / global) over one
event-time window, with the trust figure and its reasons. A value below the configured
trust floor is still published, with ``untrusted: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1


class KpiScope(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["owner", "team", "region", "global"]
    id: str = Field(description="Owner id, team (manager) id, region name, or 'all'.")


class KpiWindow(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["day", "week", "month", "rolling7", "rolling30", "all"]
    start: AwareDatetime = Field(description="First instant of the window (UTC day start).")
    end: AwareDatetime = Field(description="First instant after the window (exclusive).")


class TrustReason(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: Literal["completeness", "freshness", "sample_size"]
    value: float = Field(ge=0, le=1)
    detail: str


class Trust(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: float = Field(ge=0, le=1, description="The weakest of the reasons' values.")
    reasons: list[TrustReason]


class KpiSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kpi: str = Field(description="KPI id from the catalog.")
    scope: KpiScope
    window: KpiWindow
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="Breakdown of the KPI, e.g. {'from_stage': 'Engaging'}."
    )
    value: float | None = Field(description="None when undefined (e.g. no deal closed).")
    unit: str
    sample_size: int | None = Field(None, description="Number of inputs behind the value.")
    trust: Trust
    untrusted: bool = Field(description="trust.value is below the configured floor.")
    watermark: AwareDatetime = Field(description="Latest event time seen when computed.")
    computed_at: AwareDatetime

    def key(self) -> str:
        """Compaction key: one live value per KPI, scope, window (and dimension)."""
        return snapshot_key(
            self.kpi,
            f"{self.scope.kind}:{self.scope.id}",
            self.window.kind,
            self.window.start.date().isoformat(),
            self.dimensions,
        )


def snapshot_key(
    kpi: str, scope: str, window_kind: str, window_start: str, dimensions: Mapping[str, str]
) -> str:
    """``kpi|kind:id|window[|start][|dim=value]``: rolling windows keep one live key."""
    parts = [kpi, scope, window_kind]
    if window_kind in ("day", "week", "month"):
        parts.append(window_start)
    parts.extend(f"{k}={v}" for k, v in sorted(dimensions.items()))
    return "|".join(parts)
