"""Consumer lag, KPI stand-in values, catalog loading and pre-initialised metric series."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from streams.agents.housekeeping import lag_by_partition
from streams.kpis.catalog import KpiDefinition, load_catalog
from streams.kpis.state_kpis import KpiPoint, compute, window_seconds
from streams.metrics import Metrics
from streams.simulator import org_of

NOW = 1_800_000_000.0
DAY = 86400.0


def deal(stage: str, amount: object = 1000.0, *, created: float = NOW - DAY,
         updated: float = NOW - 60, team: str = "team-a", region: str = "West",
         next_step: str = "Call") -> dict[str, object]:  # fmt: skip
    fields = {
        "stage": stage,
        "amount": amount,
        "close_date": "2026-12-01",
        "next_step": next_step,
        "owner_id": "rep-001",
        "team": team,
        "region": region,
    }
    return {"f": fields, "c": created, "u": updated}


def values(
    points: list[KpiPoint], kpi: str, kind: str = "global", window: str | None = None
) -> dict[str, float]:
    return {
        p.scope_id: p.value
        for p in points
        if p.kpi == kpi and p.scope_kind == kind and (window is None or p.window == window)
    }


def test_lag_is_highwater_minus_committed_never_negative() -> None:
    assert lag_by_partition({0: 100, 1: 50, 2: 7}, {0: 90, 1: None, 2: 9}) == {0: 10, 1: 50, 2: 0}


def test_state_kpis_per_scope_and_window() -> None:
    catalog = load_catalog()
    states = [
        deal("Won", 500.0, updated=NOW - 2 * DAY),
        deal("Lost", 700.0, updated=NOW - 3 * DAY, team="team-b", region="East"),
        deal("Won", 900.0, updated=NOW - 20 * DAY),
        deal("Proposal", 1000.0),
        deal("Qualification", "tbd", next_step="  ", team="team-b", region="East"),
        {"f": {"stage": "Proposal", "amount": 5.0}, "c": NOW, "u": NOW, "x": True},  # deleted
    ]
    points = compute(states, catalog, NOW)
    assert values(points, "win_rate", window="rolling_30d") == {"all": 2 / 3}
    assert values(points, "win_rate", window="rolling_7d") == {"all": 0.5}
    assert values(points, "win_rate", "team", "rolling_7d") == {"team-a": 1.0, "team-b": 0.0}
    assert values(points, "open_pipeline_value") == {"all": 1000.0}
    assert values(points, "open_pipeline_value", "region") == {"West": 1000.0, "East": 0.0}
    assert values(points, "data_completeness") == {"all": 0.5}
    assert values(points, "deals_won", window="rolling_7d") == {"all": 1.0}
    assert values(points, "new_deals", window="rolling_1d") == {"all": 5.0}
    trust = {p.scope_id: p.trust for p in points
             if p.kpi == "data_completeness" and p.scope_kind == "global"}  # fmt: skip
    assert trust == {"all": 0.5 * 2 / 20}  # half complete, 2 of 20 deals for full trust


def test_unknown_kpis_are_skipped_and_bad_windows_refused() -> None:
    other = KpiDefinition(id="lead_response", name="Lead response", description="d",
                          formula="f", unit="hours", direction="lower_is_better",
                          dimensions=["global"], windows=["rolling_7d"])  # fmt: skip
    assert compute([deal("Won")], [other], NOW) == []
    assert window_seconds("rolling_30d") == 30 * DAY and window_seconds("current") is None
    with pytest.raises(ValueError, match="unsupported window 'weekly'"):
        window_seconds("weekly")


def test_catalog_refuses_duplicate_ids(tmp_path: Path) -> None:
    entry = (
        "  - {id: x, name: X, description: d, formula: f, unit: count, "
        "direction: higher_is_better, dimensions: [global], windows: [current]}\n"
    )
    path = tmp_path / "catalog.yaml"
    path.write_text("kpis:\n" + entry + entry)
    with pytest.raises(ValueError, match="duplicate KPI id"):
        load_catalog(path)


def test_rule_series_exist_at_zero_after_init() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.init_rule_series([("r1", "warning")])
    get = metrics.registry.get_sample_value
    assert get("crm_pulse_alerts_total",
               {"rule": "r1", "severity": "warning", "status": "ESCALATED"}) == 0.0  # fmt: skip
    assert get("crm_pulse_alerts_silenced_total", {"rule": "r1"}) == 0.0
    assert get("crm_pulse_rule_errors_total", {"rule": "r1"}) == 0.0
    assert get("crm_pulse_rule_reloads_total", {"result": "error"}) == 0.0


def test_simulated_org_is_bounded() -> None:
    orgs = {org_of(f"rep-{i:03d}") for i in range(1, 25)}
    assert len({team for team, _ in orgs}) == 4 and len({r for _, r in orgs}) == 2
    assert org_of("rep-001") == ("team-a", "West") and org_of("rep-013") == ("team-c", "East")


def test_housekeeping_refreshes_gauges_from_one_pass_over_states() -> None:
    import orjson

    from streams.agents.housekeeping import refresh_state_gauges

    metrics = Metrics(CollectorRegistry())
    metrics.active_alerts.labels(rule="gone").set(3)  # a rule no longer live
    metrics.kpi_value.labels(kpi="win_rate", scope_kind="team", scope_id="old", window="x").set(1)
    rules = [SimpleNamespace(id="r1"), SimpleNamespace(id="r2")]
    data = {
        b"deal:1": orjson.dumps({**deal("Proposal"), "a": {"r1": {"id": "a1"}}}),
        b"deal:2": orjson.dumps({**deal("Won"), "a": {"r1": {"id": "a2"}}}),
        b"lead:1": orjson.dumps({"f": {"x": 1}, "a": {"r2": {"id": "a3"}}}),
    }
    pulse = SimpleNamespace(
        metrics=metrics,
        entity_table=SimpleNamespace(data=data),
        engine=SimpleNamespace(rules=SimpleNamespace(rules=rules)),
    )
    refresh_state_gauges(pulse, load_catalog(), NOW)  # type: ignore[arg-type]
    get = metrics.registry.get_sample_value
    assert get("crm_pulse_tracked_records") == 3
    assert get("crm_pulse_active_alerts", {"rule": "r1"}) == 2
    assert get("crm_pulse_active_alerts", {"rule": "r2"}) == 1
    assert get("crm_pulse_active_alerts", {"rule": "gone"}) is None
    scope = {"kpi": "open_pipeline_value", "scope_kind": "global", "scope_id": "all"}
    assert get("crm_pulse_kpi_value", {**scope, "window": "current"}) == 1000.0
    stale = {"kpi": "win_rate", "scope_kind": "team", "scope_id": "old", "window": "x"}
    assert get("crm_pulse_kpi_value", stale) is None
