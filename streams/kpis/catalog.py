"""The KPI catalog (``catalog.yaml``, shipped as package data): one definition per KPI."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.kpis.compute import COMPUTERS
from streams.kpis.exceptions import CatalogError

WindowKind = Literal["day", "week", "month", "rolling7", "rolling30", "all"]
ScopeKind = Literal["owner", "team", "region", "global"]


class KpiDef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str
    formula: str = Field(description="How it is computed, in words (the shared definition).")
    kind: Literal["flow", "state"]
    unit: Literal["ratio", "currency", "days", "count", "minutes"]
    higher_is_better: bool
    depends_on: tuple[str, ...] = ()
    dimension: str | None = None
    min_sample: int | None = Field(None, ge=1)


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage_probabilities: dict[str, float]
    stale_after_days: int = Field(ge=1)
    required_fields: tuple[str, ...]
    cycle_start_field: str | None = None
    lead_status_field: str = "status"
    lead_new_status: str = "New"
    fresh_days: int = Field(7, ge=1)


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    params: Params
    windows: tuple[WindowKind, ...]
    dimensions: tuple[ScopeKind, ...]
    kpis: tuple[KpiDef, ...]

    def get(self, kpi_id: str) -> KpiDef:
        for kpi in self.kpis:
            if kpi.id == kpi_id:
                return kpi
        raise KeyError(kpi_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.kpis)


def parse_catalog(text: str, origin: str = "<catalog>") -> Catalog:
    try:
        data = yaml.safe_load(text)
        catalog = Catalog.model_validate(data)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{origin}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise CatalogError(f"{origin}: {exc}") from exc
    unknown = [k.id for k in catalog.kpis if k.id not in COMPUTERS]
    if unknown:
        raise CatalogError(f"{origin}: no computation registered for KPI(s) {unknown}")
    ids = [k.id for k in catalog.kpis]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"{origin}: duplicate KPI ids")
    return catalog


@cache
def default_catalog() -> Catalog:
    text = resources.files("streams.kpis").joinpath("catalog.yaml").read_text()
    return parse_catalog(text, "streams/kpis/catalog.yaml")


def load_catalog(path: Path | None) -> Catalog:
    """The catalog at ``path``, or the one shipped with the package."""
    if path is None:
        return default_catalog()
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from exc
    return parse_catalog(text, str(path))
