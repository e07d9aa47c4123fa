"""The panel vocabulary of the dashboards (Grafana's ``grafana-foundation-sdk`` builders):
queries, time series, stats, tables, a grid layout and the dashboard shell."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
#: Grafana's automatic range for rate(); the integration test substitutes a fixed window.
RATE = "$__rate_interval"
TAGS = ["crm-pulse"]
#: Catalog units -> Grafana units.
UNITS = {"ratio": "percentunit", "percent": "percent", "currency": "short", "count": "short",
         "days": "d", "hours": "h", "minutes": "m", "seconds": "s"}  # fmt: skip
TRUST_STEPS = [(None, "red"), (0.5, "orange"), (0.8, "green")]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    table: bool = False  # instant query in table format (one row per series)


@dataclass
class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[Any] = field(default_factory=list)

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            dashboard.Row(title).id(self._id()).grid_pos(model.GridPos(h=1, w=24, x=0, y=self.y))
        )
        self.y += 1

    def add(self, panel: Any, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel.id(self._id()).grid_pos(model.GridPos(h=h, w=w, x=self.x, y=self.y))
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def targets(panel: Any, queries: Sequence[Query]) -> Any:
    for i, q in enumerate(queries):
        target = (
            prometheus.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DATASOURCE)
        )
        if q.legend:
            target = target.legend_format(q.legend)
        if q.table:
            target = target.instant().format(PromQueryFormat.TABLE)
        panel.with_target(target)
    return panel


def thresholds(steps: Sequence[tuple[float | None, str]]) -> Any:
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


def ts(title: str, description: str, queries: Sequence[Query], unit: str = "short") -> Any:
    panel = timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
    return targets(panel.unit(unit), queries)


def single(
    title: str, description: str, query: Query, unit: str = "short",
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
) -> Any:  # fmt: skip
    panel = (
        stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
        .thresholds(thresholds(steps)).color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )  # fmt: skip
    return targets(panel, [query])


def top_table(title: str, description: str, query: Query, unit: str = "short") -> Any:
    panel = table.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
    panel.with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": {"Time": True}, "renameByName": {"Value": "count"}},
        )
    )
    return targets(panel, [query])


def assemble(uid: str, title: str, layout: Layout) -> Any:
    board = (
        dashboard.Dashboard(title).uid(uid).tags(TAGS).editable().refresh("10s")
        .time("now-1h", "now").timezone("browser")
    )  # fmt: skip
    board._internal.editable = False  # provisioned from files: edits belong in streams/dashboards
    for panel in layout.panels:
        board.with_panel(panel)
    return board.build()
