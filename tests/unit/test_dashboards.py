"""The committed dashboards are exactly what the generator builds from the KPI catalog."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import yaml

from streams.dashboards import (
    DATASOURCE,
    build_all,
    panel_queries,
    render,
    write_all,
)
from streams.kpis.catalog import CATALOG_PATH, load_catalog

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
        assert f'kpi="{kpi.id}",scope_kind="team"' in exprs
        assert f'kpi="{kpi.id}",scope_kind="region"' in exprs


def test_a_new_catalog_kpi_gets_panels_without_code(tmp_path: Path) -> None:
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["kpis"].append({
        "id": "avg_deal_size", "name": "Average won deal size", "description": "Mean amount.",
        "formula": "sum(amount of won) / count(won)", "unit": "currency",
        "direction": "higher_is_better", "dimensions": ["global", "team"],
        "windows": ["rolling_30d"],
    })  # fmt: skip
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(raw))
    board = build_all(load_catalog(catalog))["kpis.json"]
    titles = [p["title"] for p in board["panels"]]
    assert "Average won deal size" in titles and "Average won deal size: trend" in titles
    team_table = next(p for p in board["panels"] if p["title"] == "KPIs per team")
    assert any('kpi="avg_deal_size"' in t["expr"] for t in team_table["targets"])
    region_table = next(p for p in board["panels"] if p["title"] == "KPIs per region")
    assert not any('kpi="avg_deal_size"' in t["expr"] for t in region_table["targets"])


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
            if "owner" in expr:
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
