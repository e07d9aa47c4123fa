"""Consumer lag, pre-initialised metric series and the housekeeping gauges."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from streams.agents.housekeeping import lag_by_partition
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


def test_lag_is_highwater_minus_committed_never_negative() -> None:
    assert lag_by_partition({0: 100, 1: 50, 2: 7}, {0: 90, 1: None, 2: 9}) == {0: 10, 1: 50, 2: 0}


def test_rule_series_exist_at_zero_after_init() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.init_rule_series([("r1", "warning")])
    get = metrics.registry.get_sample_value
    assert get("crm_pulse_alerts_total",
               {"rule": "r1", "severity": "warning", "status": "ESCALATED"}) == 0.0  # fmt: skip
    assert get("crm_pulse_alerts_muted_total", {"rule": "r1", "reason": "silenced"}) == 0.0
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
    rules = [SimpleNamespace(id="r1"), SimpleNamespace(id="r2")]
    data = {
        b"deal:1": orjson.dumps({**deal("Proposal"), "a": {"r1": {"id": "a1"}}}),
        b"deal:2": orjson.dumps({**deal("Won"), "a": {"r1": {"id": "a2"}}}),
        b"lead:1": orjson.dumps({"f": {"x": 1}, "a": {"r2": {"id": "a3"}}}),
        b"lead:2": orjson.dumps({"f": {"a": {"r1": 1}}}),  # a field named "a": no episode
        b"lead:3": orjson.dumps({"f": {"x": 2}}),
    }
    pulse = SimpleNamespace(
        metrics=metrics,
        entity_table=SimpleNamespace(data=data),
        engine=SimpleNamespace(rules=SimpleNamespace(rules=rules)),
    )
    refresh_state_gauges(pulse)  # type: ignore[arg-type]
    get = metrics.registry.get_sample_value
    assert get("crm_pulse_tracked_records") == 5
    assert get("crm_pulse_active_alerts", {"rule": "r1"}) == 2
    assert get("crm_pulse_active_alerts", {"rule": "r2"}) == 1
    assert get("crm_pulse_active_alerts", {"rule": "gone"}) is None


def test_every_metric_attribute_is_declared_once() -> None:
    import ast
    import inspect

    from streams import metrics as module

    tree = ast.parse(inspect.getsource(module.Metrics))
    names = [
        node.targets[0].attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Attribute)
        and isinstance(node.targets[0].value, ast.Name)
        and node.targets[0].value.id == "self"
    ]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
