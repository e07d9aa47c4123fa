"""Grafana dashboards as code, generated from the KPI catalog and the metrics of the engine.

Built with Grafana's own ``grafana-foundation-sdk`` (typed builders that follow the
dashboard schema of the pinned Grafana release), written to ``grafana/dashboards/*.json``
for Grafana's file provisioning. A KPI added to the catalog gets its panels on the next
``make dashboards``; a unit test fails while the committed JSON differs from a fresh build.

Run: ``python -m streams.dashboards [--out grafana/dashboards] [--catalog FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from streams.kpis.catalog import Catalog, load_catalog

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
DEFAULT_OUT = Path("grafana/dashboards")
#: Grafana's automatic range for rate(); the integration test substitutes a fixed window.
RATE = "$__rate_interval"
TAGS = ["crm-pulse"]
#: Catalog units -> Grafana units.
UNITS = {"ratio": "percentunit", "percent": "percent", "currency": "short", "count": "short",
         "days": "d", "hours": "h", "minutes": "m", "seconds": "s"}  # fmt: skip
TRUST_STEPS = [(None, "red"), (0.5, "orange"), (0.8, "green")]


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


def _targets(panel: Any, queries: Sequence[Query]) -> Any:
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


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> Any:
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in steps])
    )


def ts(title: str, description: str, queries: Sequence[Query], unit: str = "short") -> Any:
    panel = timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
    return _targets(panel.unit(unit), queries)


def single(
    title: str, description: str, query: Query, unit: str = "short",
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
) -> Any:  # fmt: skip
    panel = (
        stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
        .thresholds(_thresholds(steps)).color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )  # fmt: skip
    return _targets(panel, [query])


def top_table(title: str, description: str, query: Query, unit: str = "short") -> Any:
    panel = table.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
    panel.with_transformation(
        model.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": {"Time": True}, "renameByName": {"Value": "count"}},
        )
    )
    return _targets(panel, [query])


# --- Sales KPIs at a glance ----------------------------------------------------------------


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
        .unit(UNITS.get(kpi.unit, "short")).thresholds(_thresholds([(None, "text")]))
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
    return _targets(
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
    return _targets(panel, queries)


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
    return _dashboard("crm-pulse-kpis", "Sales KPIs at a glance", layout)


# --- Alerts --------------------------------------------------------------------------------


def alerts_dashboard() -> Any:
    layout = Layout()
    layout.row("Now")
    layout.add(single("Active alerts", "Open alert episodes (all rules).",
                      Query("sum(crm_pulse_active_alerts)"),
                      steps=[(None, "green"), (1, "orange"), (50, "red")]), w=6, h=5)  # fmt: skip
    layout.add(single("Escalated (1h)", "Alerts escalated in the last hour.",
                      Query('sum(increase(crm_pulse_alerts_total{status="ESCALATED"}[1h]))'),
                      steps=[(None, "green"), (1, "red")]), w=6, h=5)  # fmt: skip
    layout.add(
        single(
            "Silenced (1h)",
            "Alerts suppressed by a silence in the last hour.",
            Query('sum(increase(crm_pulse_alerts_muted_total{reason="silenced"}[1h]))'),
        ),
        w=6,
        h=5,
    )
    layout.add(single("Alerts fired (1h)", "New alert episodes in the last hour.",
                      Query('sum(increase(crm_pulse_alerts_total{status="FIRING"}[1h]))')),
               w=6, h=5)  # fmt: skip
    layout.row("Rates")
    layout.add(ts("Alerts/s by rule and severity", "All statuses.",
                  [Query(f"sum by (rule, severity) (rate(crm_pulse_alerts_total[{RATE}]))",
                         "{{rule}} ({{severity}})")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(ts("Alerts/s by status", "FIRING, REMINDER, ESCALATED, RESOLVED.",
                  [Query(f"sum by (status) (rate(crm_pulse_alerts_total[{RATE}]))",
                         "{{status}}")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(
        ts(
            "Active alerts by rule",
            "Open episodes per rule.",
            [Query("sum by (rule) (crm_pulse_active_alerts)", "{{rule}}")],
        ),
        w=8,
        h=8,
    )
    layout.add(ts("Escalated/s by rule", "Escalations per rule.",
                  [Query(f'sum by (rule) (rate(crm_pulse_alerts_total{{status="ESCALATED"}}'
                         f"[{RATE}]))", "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Silenced/s by rule", "Alerts suppressed by silences, per rule.",
                  [Query("sum by (rule) (rate(crm_pulse_alerts_muted_total"
                         f'{{reason="silenced"}}[{RATE}]))',
                         "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.row("Who and what")
    layout.add(top_table("Top rules (1h)", "Rules with the most new alerts in the last hour.",
                         Query('topk(10, sum by (rule) (increase(crm_pulse_alerts_total'
                               '{status="FIRING"}[1h])))', table=True)), w=12, h=8)  # fmt: skip
    layout.add(top_table(
        "Top owners (1h, opt-in)",
        "Owners with the most alerts in the last hour. Owner ids are not metric labels by "
        "default (unbounded): set CRM_PULSE_METRICS_OWNER_LABEL=true to fill this panel, only "
        "with a bounded number of owners.",
        Query("topk(10, sum by (owner) (increase(crm_pulse_alerts_by_owner_total[1h])))",
              table=True)), w=12, h=8)  # fmt: skip
    layout.row("Notifications")
    # `or vector(0)`: a worker without the notifier still answers (0, not "No data").
    layout.add(ts("Notifications/s by target and result",
                  "sent, failed (each failed attempt), retried, dead_lettered (crm.notify.dlq).",
                  [Query(f"sum by (target, result) (rate(crm_pulse_notifications_total[{RATE}]))"
                         " or vector(0)", "{{target}} {{result}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Notifications/s by alert status", "Successful deliveries per status.",
                  [Query("sum by (status) (rate(crm_pulse_notifications_total"
                         f'{{result="sent"}}[{RATE}])) or vector(0)', "{{status}}")],
                  "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Latency: fired_at to delivered (p50/p99)",
                  "From the alert's fired_at to the target's 2xx, per target.",
                  [Query("histogram_quantile(0.5, sum by (le, target) (rate("
                         f"crm_pulse_notification_latency_seconds_bucket[{RATE}]))) or vector(0)",
                         "p50 {{target}}"),
                   Query("histogram_quantile(0.99, sum by (le, target) (rate("
                         f"crm_pulse_notification_latency_seconds_bucket[{RATE}]))) or vector(0)",
                         "p99 {{target}}")], "s"), w=8, h=8)  # fmt: skip
    layout.add(single("Dead-lettered notifications (1h)",
                      "Alerts a target refused after the last retry: on crm.notify.dlq.",
                      Query("sum(increase(crm_pulse_notifications_total{result=\"dead_lettered\"}"
                            "[1h])) or vector(0)"),
                      steps=[(None, "green"), (1, "red")]), w=6, h=5)  # fmt: skip
    layout.add(single("Open episodes held in Alertmanager",
                      "Open episodes the notifier re-posts (0 without a notifier).",
                      Query("sum(crm_pulse_notify_open_episodes) or vector(0)")),
               w=6, h=5)  # fmt: skip
    return _dashboard("crm-pulse-alerts", "Alerts", layout)


# --- Engine health -------------------------------------------------------------------------


def _quantiles(metric: str) -> list[Query]:
    return [
        Query(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[{RATE}])))", f"p{p}")
        for q, p in ((0.5, 50), (0.95, 95), (0.99, 99))
    ]


def engine_dashboard() -> Any:
    layout = Layout()
    layout.row("Throughput")
    layout.add(single("Workers up", "Workers Prometheus scrapes successfully.",
                      Query('sum(up{job="crm-pulse"})'),
                      steps=[(None, "red"), (1, "green")]), w=6, h=5)  # fmt: skip
    layout.add(
        single(
            "Events/s",
            "Valid events processed per second.",
            Query(f"sum(rate(crm_pulse_events_total[{RATE}]))"),
            "ops",
        ),
        w=6,
        h=5,
    )
    layout.add(single("Consumer lag", "Records behind the end of the input topic (all).",
                      Query("sum(crm_pulse_consumer_lag)"),
                      steps=[(None, "green"), (1000, "orange"), (10000, "red")]),
               w=6, h=5)  # fmt: skip
    layout.add(single("Tracked records", "Records held in the entity-state table.",
                      Query("sum(crm_pulse_tracked_records)")), w=6, h=5)  # fmt: skip
    layout.add(ts("Events/s by entity and op", "Valid change events.",
                  [Query(f"sum by (entity, op) (rate(crm_pulse_events_total[{RATE}]))",
                         "{{entity}} {{op}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Events/s by source", "Valid change events per source system.",
                  [Query(f"sum by (source) (rate(crm_pulse_events_total[{RATE}]))",
                         "{{source}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Dead letters/s by reason", "Refused events sent to the DLQ topic.",
                  [Query(f"sum by (reason) (rate(crm_pulse_invalid_events_total[{RATE}]))",
                         "{{reason}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.row("Latency and lag")
    layout.add(
        ts(
            "Latency: ingest to alert produced",
            "Batch received to alert acknowledged.",
            _quantiles("crm_pulse_processing_latency_seconds"),
            "s",
        ),
        w=8,
        h=8,
    )
    layout.add(
        ts(
            "Latency: event time to alert produced",
            "occurred_at to alert produced.",
            _quantiles("crm_pulse_event_to_alert_latency_seconds"),
            "s",
        ),
        w=8,
        h=8,
    )
    layout.add(ts("Consumer lag by partition", "Highwater minus committed offset.",
                  [Query("sum by (partition) (crm_pulse_consumer_lag)", "p{{partition}}")]),
               w=8, h=8)  # fmt: skip
    layout.row("Rules")
    layout.add(ts("Rule reloads by result", "Rule set swaps since start (ok / error).",
                  [Query("sum by (result) (crm_pulse_rule_reloads_total)", "{{result}}")]),
               w=8, h=8)  # fmt: skip
    layout.add(ts("Rule errors/s by rule", "Rule evaluations that raised (isolated).",
                  [Query(f"sum by (rule) (rate(crm_pulse_rule_errors_total[{RATE}]))",
                         "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Live rules", "Enabled rules in the live set.",
                  [Query("max(crm_pulse_rules_live)", "rules")]), w=8, h=8)  # fmt: skip
    layout.row("Internals")
    layout.add(ts("Batch size p50/p95", "Events per processed batch.",
                  [Query(f"histogram_quantile({q}, sum by (le) "
                         f"(rate(crm_pulse_batch_size_bucket[{RATE}])))", f"p{p}")
                   for q, p in ((0.5, 50), (0.95, 95))]), w=8, h=8)  # fmt: skip
    layout.add(ts("Duplicates/s", "Events ignored as already seen (same event_id).",
                  [Query(f"sum(rate(crm_pulse_duplicate_events_total[{RATE}]))", "duplicates")],
                  "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Housekeeping pass p95", "Lag, active-alert and KPI gauge refresh.",
                  [Query("histogram_quantile(0.95, sum by (le) "
                         f"(rate(crm_pulse_housekeeping_seconds_bucket[{RATE}])))", "p95")],
                  "s"), w=8, h=8)  # fmt: skip
    layout.add(ts("Records produced/s by kind",
                  "Alerts, dead letters and state changelog records sent by the shipper.",
                  [Query(f"sum by (kind) (rate(crm_pulse_produced_total[{RATE}]))",
                         "{{kind}}")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(ts("Shipping p95 (send to broker ack)",
                  "Time from handing a batch's alerts to the producer to the broker's acks.",
                  [Query("histogram_quantile(0.95, sum by (le) "
                         f"(rate(crm_pulse_ship_seconds_bucket[{RATE}])))", "p95")],
                  "s"), w=12, h=8)  # fmt: skip
    return _dashboard("crm-pulse-engine", "Engine health", layout)


# --- assembly ------------------------------------------------------------------------------


def _dashboard(uid: str, title: str, layout: Layout) -> Any:
    board = (
        dashboard.Dashboard(title).uid(uid).tags(TAGS).editable().refresh("10s")
        .time("now-1h", "now").timezone("browser")
    )  # fmt: skip
    board._internal.editable = False  # provisioned from files: edits belong in this module
    for panel in layout.panels:
        board.with_panel(panel)
    return board.build()


def build_all(kpis: Sequence[KpiDefinition]) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON (as plain data) for every dashboard."""
    boards = {
        "kpis.json": kpis_dashboard(kpis),
        "alerts.json": alerts_dashboard(),
        "engine.json": engine_dashboard(),
    }
    encoder = JSONEncoder(sort_keys=True)
    return {name: json.loads(encoder.encode(board)) for name, board in boards.items()}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def panel_queries(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Every (panel title, refId, PromQL) of a dashboard, rows included."""
    for panel in board.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets") or []:
                yield inner["title"], target.get("refId", ""), target["expr"]


def write_all(out: Path, catalog: Path | None = None) -> list[Path]:
    """Write every dashboard; ``catalog`` defaults to the catalog shipped with the package."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in build_all(kpi_definitions(load_catalog(catalog))).items():
        path = out / name
        path.write_text(render(board))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--catalog", type=Path, default=None)
    args = parser.parse_args(argv)
    for path in write_all(args.out, args.catalog):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
