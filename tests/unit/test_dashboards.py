"""The committed dashboards are exactly what the generator builds from the KPI catalog."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import yaml

from streams.dashboards.build import build_all, panel_queries, render, write_all
from streams.dashboards.kpis import HEADLINE_WINDOW, KpiDefinition, kpi_definitions, kpi_selector
from streams.dashboards.panels import DATASOURCE
from streams.kpis.catalog import Catalog, default_catalog


def load_catalog() -> list[KpiDefinition]:
    return kpi_definitions(default_catalog())


REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "grafana" / "dashboards"


def test_committed_json_equals_a_fresh_generation(tmp_path: Path) -> None:
    write_all(tmp_path)
    fresh = sorted(p.name for p in tmp_path.glob("*.json"))
    assert fresh == sorted(p.name for p in COMMITTED.glob("*.json"))
    for name in fresh:
        assert (COMMITTED / name).read_text() == (tmp_path / name).read_text(), (
            f"grafana/dashboards/{name} is stale: run `make dashboards`"
        )


def test_every_kpi_of_the_catalog_has_its_panels() -> None:
    kpis = load_catalog()
    board = build_all(kpis)["kpis.json"]
    titles = [p["title"] for p in board["panels"]]
    exprs = "\n".join(expr for _, _, expr in panel_queries(board))
    for kpi in kpis:
        assert kpi.name in titles and f"{kpi.name}: trend" in titles
        stat = next(p for p in board["panels"] if p["title"] == kpi.name)
        assert kpi.description in stat["description"]
        assert kpi_selector(kpi, "team", HEADLINE_WINDOW) in exprs
        assert kpi_selector(kpi, "region", HEADLINE_WINDOW) in exprs


def test_a_kpi_split_by_a_dimension_selects_all_its_series() -> None:
    (conversion,) = [k for k in load_catalog() if k.dimension]
    assert kpi_selector(conversion, "global") == (
        f'{{kpi=~"{conversion.id}:.+",scope_kind="global"}}'
    )


def test_a_new_catalog_kpi_gets_panels_without_dashboard_code() -> None:
    raw = default_catalog().model_dump()
    raw["kpis"] = [*raw["kpis"], {
        "id": "deals_reopened", "name": "Deals reopened", "description": "Closed, then open.",
        "formula": "deals leaving Won or Lost, in the window", "kind": "flow", "unit": "count",
        "higher_is_better": False,
    }]  # fmt: skip
    board = build_all(kpi_definitions(Catalog.model_validate(raw)))["kpis.json"]
    titles = [p["title"] for p in board["panels"]]
    assert "Deals reopened" in titles and "Deals reopened: trend" in titles
    for table in ("KPIs per team", "KPIs per region"):
        panel = next(p for p in board["panels"] if p["title"] == table)
        assert any('kpi="deals_reopened"' in t["expr"] for t in panel["targets"])
    stat = next(p for p in board["panels"] if p["title"] == "Deals reopened")
    assert f'window="{HEADLINE_WINDOW}"' in stat["targets"][0]["expr"]


def test_panels_are_well_formed_for_grafana() -> None:
    for name, board in build_all(load_catalog()).items():
        assert board["schemaVersion"] == 41, name  # Grafana 11.6 dashboard schema
        assert board["uid"].startswith("crm-pulse-") and board["editable"] is False
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, name
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            if panel["type"] == "row":
                continue
            assert panel["description"], (name, panel["title"])
            assert panel["datasource"]["uid"] == DATASOURCE.uid
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)) and all(refs), (name, panel["title"])
        assert render(board) == render(json.loads(render(board)))


def test_owner_is_never_a_default_label() -> None:
    for board in build_all(load_catalog()).values():
        for title, _, expr in panel_queries(board):
            if "owner" in re.sub(r'kpi="[^"]*"', "", expr):  # a KPI id may say "owner"
                assert "crm_pulse_alerts_by_owner_total" in expr and "opt-in" in title


def test_datasource_and_grafana_release_match_the_provisioning() -> None:
    datasource = yaml.safe_load(
        (REPO / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["uid"] == DATASOURCE.uid and datasource["type"] == "prometheus"
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    image = compose["services"]["grafana"]["image"]
    grafana_minor = re.fullmatch(r"grafana/grafana:(\d+\.\d+)\.\d+", image)
    assert grafana_minor, image
    sdk_target = version("grafana-foundation-sdk").split("!")[-1]
    assert sdk_target.startswith(grafana_minor.group(1) + "."), (image, sdk_target)
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/crm-pulse.yml").read_text())[
        "providers"
    ][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_committed_json_decodes_as_a_typed_grafana_dashboard() -> None:
    """Each file parses into the SDK's typed model of the pinned release and back, unchanged."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for path in sorted(COMMITTED.glob("*.json")):
        data = json.loads(path.read_text())
        typed = Dashboard.from_json(data)
        assert json.loads(JSONEncoder(sort_keys=True).encode(typed)) == data, path.name
        assert {p["type"] for p in data["panels"]} <= {"row", "stat", "table", "timeseries"}
