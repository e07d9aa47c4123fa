"""Every dashboard as JSON: assembly, rendering and the files under ``grafana/dashboards``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from streams.dashboards.alerts import alerts_dashboard
from streams.dashboards.health import engine_dashboard
from streams.dashboards.kpis import KpiDefinition, kpi_definitions, kpis_dashboard
from streams.kpis.catalog import load_catalog

DEFAULT_OUT = Path("grafana/dashboards")


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
