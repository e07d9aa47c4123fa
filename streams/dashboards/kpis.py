"""The "Sales KPIs at a glance" dashboard, built from the KPI catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from streams.dashboards.panels import (
    DATASOURCE,
    TRUST_STEPS,
    UNITS,
    Layout,
    Query,
    assemble,
    targets,
    thresholds,
    ts,
)
from streams.kpis.catalog import Catalog

#: Window of the headline stat and the tables (the catalog's windows follow in the help).
HEADLINE_WINDOW = "rolling30"


@dataclass(frozen=True)
class KpiDefinition:
    """What the dashboards need of one catalog KPI."""

    id: str
    name: str
    description: str
    formula: str
    unit: str
    direction: str
    dimensions: tuple[str, ...]
    windows: tuple[str, ...]
    #: Field splitting the KPI into several series (``None``: one series per scope).
    dimension: str | None = None


def kpi_definitions(catalog: Catalog) -> list[KpiDefinition]:
    """The catalog's KPIs, headline window first, in catalog order."""
    windows = (HEADLINE_WINDOW, *(w for w in catalog.windows if w != HEADLINE_WINDOW))
    return [
        KpiDefinition(
            id=k.id,
            name=k.name,
            description=k.description,
            formula=k.formula,
            unit=k.unit,
            direction="higher is better" if k.higher_is_better else "lower is better",
            dimensions=tuple(catalog.dimensions),
            windows=windows,
            dimension=k.dimension,
        )
        for k in catalog.kpis
    ]


def headline_window(kpi: KpiDefinition) -> str:
    return str(kpi.windows[0])


def kpi_selector(kpi: KpiDefinition, scope_kind: str, window: str | None = None) -> str:
    """Label selector of one KPI; a KPI split by a dimension is exported as ``id:value``
    series (e.g. ``stage_conversion:Proposal``), selected together."""
    window_part = f',window="{window}"' if window else ""
    name = f'kpi=~"{kpi.id}:.+"' if kpi.dimension else f'kpi="{kpi.id}"'
    return f'{{{name},scope_kind="{scope_kind}"{window_part}}}'


def kpi_help(kpi: KpiDefinition) -> str:
    return (
        f"{kpi.description}\n\nFormula: {kpi.formula}. Unit: {kpi.unit}; {kpi.direction}. "
        f"Window shown: {headline_window(kpi)} (all: {', '.join(map(str, kpi.windows))}). "
        "Trust in [0, 1] (completeness, sample size): red < 0.5 <= orange < 0.8 <= green."
    )


def kpi_stat(kpi: KpiDefinition) -> Any:
    """The KPI value and its trust; the trust figure is coloured red / orange / green."""
    sel = kpi_selector(kpi, "global", headline_window(kpi))
    panel = (
        stat.Panel().title(kpi.name).description(kpi_help(kpi)).datasource(DATASOURCE)
        .unit(UNITS.get(kpi.unit, "short")).thresholds(thresholds([(None, "text")]))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .override_by_query("B", [
            model.DynamicConfigValue(id_val="unit", value="percentunit"),
            model.DynamicConfigValue(id_val="thresholds", value={
                "mode": "absolute",
                "steps": [{"value": v, "color": c} for v, c in TRUST_STEPS],
            }),
        ])
    )  # fmt: skip
    return targets(
        panel,
        [Query(f"max(crm_pulse_kpi_value{sel})", "value"),
         Query(f"max(crm_pulse_kpi_trust{sel})", "trust")],
    )  # fmt: skip


def scope_table(kpis: Sequence[KpiDefinition], scope_kind: str) -> Any:
    """One row per team (or region), one column per KPI value and its trust."""
    queries: list[Query] = []
    rename: dict[str, str] = {}
    overrides: list[tuple[str, str]] = []
    for kpi in kpis:
        sel = kpi_selector(kpi, scope_kind, headline_window(kpi))
        for metric, suffix in (("crm_pulse_kpi_value", ""), ("crm_pulse_kpi_trust", " trust")):
            ref = chr(ord("A") + len(queries))
            queries.append(Query(f"max by (scope_id) ({metric}{sel})", table=True))
            rename[f"Value #{ref}"] = kpi.name + suffix
            overrides.append((kpi.name + suffix, "percentunit" if suffix else
                              UNITS.get(kpi.unit, "short")))  # fmt: skip
    panel = (
        table.Panel().title(f"KPIs per {scope_kind}").datasource(DATASOURCE)
        .description(f"Headline window of each KPI, per {scope_kind}. Trust columns: "
                     "red < 0.5 <= orange < 0.8 <= green. "
                     + " ".join(f"{k.name}: {k.description}" for k in kpis))
    )  # fmt: skip
    panel.with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
    panel.with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": {"Time": True},
                     "renameByName": {"scope_id": scope_kind, **rename}},
        )
    )  # fmt: skip
    for name, unit in overrides:
        props = [model.DynamicConfigValue(id_val="unit", value=unit)]
        if name.endswith(" trust"):
            props += [
                model.DynamicConfigValue(id_val="thresholds", value={
                    "mode": "absolute",
                    "steps": [{"value": v, "color": c} for v, c in TRUST_STEPS]}),
                model.DynamicConfigValue(id_val="custom.cellOptions",
                                         value={"type": "color-background"}),
            ]  # fmt: skip
        panel.override_by_name(name, props)
    return targets(panel, queries)


def kpi_trend(kpi: KpiDefinition) -> Any:
    return ts(
        f"{kpi.name}: trend", kpi_help(kpi),
        [Query(f"max by (window) (crm_pulse_kpi_value{kpi_selector(kpi, 'global')})",
               "{{window}}")],
        UNITS.get(kpi.unit, "short"),
    )  # fmt: skip


def kpis_dashboard(kpis: Sequence[KpiDefinition]) -> Any:
    layout = Layout()
    layout.row("At a glance (global, headline window; trust coloured)")
    globals_ = [k for k in kpis if "global" in k.dimensions]
    width = max(4, 24 // max(1, min(len(globals_), 6)))
    for kpi in globals_:
        layout.add(kpi_stat(kpi), w=width, h=5)
    for scope_kind in ("team", "region"):
        scoped = [k for k in kpis if scope_kind in k.dimensions]
        if scoped:
            layout.row(f"Per {scope_kind}")
            layout.add(scope_table(scoped, scope_kind), w=24, h=8)
    layout.row("Trends")
    for kpi in globals_:
        layout.add(kpi_trend(kpi), w=8, h=7)
    return assemble("crm-pulse-kpis", "Sales KPIs at a glance", layout)
