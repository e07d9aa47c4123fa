"""Loads the KPI catalog (``catalog.yaml``): one validated :class:`KpiDefinition` per KPI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class KpiDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable id (metric label).")
    name: str
    description: str
    formula: str
    unit: str = Field(description="ratio, currency, count, days…")
    direction: str = Field(description="higher_is_better or lower_is_better.")
    dimensions: list[str] = Field(description="Scope kinds: global, team, region, owner.")
    windows: list[Any] = Field(min_length=1, description="Windows; the first is the headline.")


def load_catalog(path: Path = CATALOG_PATH) -> list[KpiDefinition]:
    """The KPIs of the catalog file, in file order (ids must be unique)."""
    raw = yaml.safe_load(path.read_text())
    kpis = [KpiDefinition.model_validate(entry) for entry in raw["kpis"]]
    ids = [k.id for k in kpis]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate KPI id(s): {', '.join(duplicates)}")
    return kpis
