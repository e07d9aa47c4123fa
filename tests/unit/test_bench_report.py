"""The pure parts of the benchmark: percentile math, table, JSON result schema, rule pack."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from benchmarks import report
from benchmarks.events import _IndexedDeals, generate
from benchmarks.rulepack import missing_parity
from benchmarks.worker import handled, parse_metrics
from streams.rules.model import parse_rule


def test_percentile_matches_the_inclusive_quantiles_of_the_standard_library() -> None:
    rng = random.Random(3)
    values = [rng.expovariate(1 / 20) for _ in range(1001)]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for q in (1, 50, 95, 99):
        assert report.percentile(values, q) == pytest.approx(cuts[q - 1])


def test_percentile_interpolates_between_ranks_and_ignores_input_order() -> None:
    assert report.percentile([40.0, 10.0, 30.0, 20.0], 50) == pytest.approx(25.0)
    assert report.percentile([5.0], 99) == 5.0
    assert report.percentile([1.0, 2.0], 0) == 1.0
    assert report.percentile([1.0, 2.0], 100) == 2.0


def test_percentile_refuses_no_values_and_out_of_range_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        report.percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        report.percentile([1.0], 101)


def test_latency_summary() -> None:
    latencies = [float(ms) for ms in range(1, 101)]
    summary = report.latency_summary(latencies)
    assert summary["count"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100.0
    empty = report.latency_summary([])
    assert empty["count"] == 0 and empty["p99_ms"] is None


def test_run_figure_and_its_line_say_when_a_run_did_not_finish() -> None:
    done = report.run_figure(expected=1000, processed=1000, seconds=0.5, budget_s=60)
    assert done["finished"] and done["eps"] == 2000.0
    assert report.describe_run(done) == "1000 events, 2,000 ev/s over 0.50 s"
    partial = report.run_figure(expected=500_000, processed=12_000, seconds=30.0, budget_s=30)
    assert not partial["finished"]
    assert report.describe_run(partial) == (
        "did not finish in 30 s, processed 12000 of 500000 events = 400 ev/s"
    )


def test_median_of_runs_and_ratios() -> None:
    runs = [{"eps": eps} for eps in (300.0, 100.0, 200.0)]
    assert report.median_eps(runs) == 200.0
    assert report.median_eps([{"eps": 1.0}, {"eps": 3.0}]) == 2.0
    assert report.median_eps([]) is None
    got = report.ratios(1000.0, 250.0, 500.0)
    assert {k: v for k, v in got.items() if v is not None} == {
        "pulse_to_limit": 0.25,
        "pulse_to_peer": 0.5,
        "peer_to_limit": 0.5,
    }
    assert report.ratio(1.0, 0.0) is None
    assert report.ratio(None, 2.0) is None


def _result(peer_runs: bool = True) -> dict[str, Any]:
    def section(eps: list[float], **extra: Any) -> dict[str, Any]:
        runs = [
            report.run_figure(expected=1000, processed=1000, seconds=1000 / e, budget_s=60)
            for e in eps
        ]
        return {"events": 1000, "runs": runs, "median_eps": report.median_eps(runs), **extra}

    limit = section([90_000.0, 100_000.0, 110_000.0])
    floor = section([20_000.0, 25_000.0, 30_000.0])
    latency = {"target_eps": 500.0, "rate_source": "0.5 x the full pack's measured 1,000",
               "offered_eps": 498.0, **report.latency_summary([5.0, 7.0, 40.0])}  # fmt: skip
    pulse = section(
        [900.0, 1000.0, 1100.0],
        mode="full",
        latency=latency,
        peak_rss_bytes=120 * 2**20,
        state_bytes_per_deal=417.0,
    )
    parity = section(
        [6000.0, 7000.0, 8000.0], mode="parity", peak_rss_bytes=90 * 2**20,
        state_bytes_per_deal=300.0,
    )  # fmt: skip
    peer = section(
        [4000.0, 5000.0] if peer_runs else [],
        name="quixstreams 3.28.1",
        peak_rss_bytes=100 * 2**20 if peer_runs else None,
    )
    return {
        "schema": report.SCHEMA_ID,
        "started_at": "2026-11-27T04:00:00+00:00",
        "command": "python benchmarks/run.py --quick",
        "machine": {"cpus": 2, "under_load": True},
        "config": {"events": 1000, "repeat": 3, "rules": ["r1"], "kpis": ["win_rate"]},
        "limit": limit,
        "floor": floor,
        "pulse": pulse,
        "pulse_parity": parity,
        "peer": peer,
        "ratios": report.ratios(
            limit["median_eps"],
            pulse["median_eps"],
            peer["median_eps"],
            floor=floor["median_eps"],
            parity=parity["median_eps"],
        ),
    }


def _rows(table: str) -> dict[str, list[str]]:
    """Row label -> its cells (limit, floor, parity, full, peer), blanks kept as ''."""
    lines = table.splitlines()
    widths = [len(cell) for cell in lines[1].split("  ")]
    rows = {}
    for line in lines[2:]:
        cells, pos = [], 0
        for w in widths:
            cells.append(line[pos : pos + w].strip())
            pos += w + 2
        rows[cells[0]] = cells[1:]
    return rows


def test_table_has_one_aligned_row_per_figure_and_both_modes_beside_the_baselines() -> None:
    result = _result()
    table = report.format_table(result)
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # every column padded to its width
    for title in ("limit (aiokafka)", "floor (Faust)", "CRM Pulse parity", "CRM Pulse full",
                  "peer (quixstreams 3.28.1)"):  # fmt: skip
        assert title in lines[0]
    rows = _rows(table)
    assert rows["events/s (median)"] == ["100,000", "25,000", "7,000", "1,000", "4,500"]
    assert rows["ratio to limit"] == ["1.00", "0.250", "0.070", "0.010", "0.045"]
    assert rows["ratio to floor"] == ["", "1.00", "0.280", "0.040", "0.180"]
    assert rows["ratio to peer"] == ["", "", "1.556", "0.222", "1.00"]  # 7,000 / 4,500
    assert rows["latency offered load"][3] == "500 ev/s"
    assert rows["alert latency p50"][3] == "7.0 ms"
    assert rows["peak RSS"] == ["", "", "90.0 MiB", "120.0 MiB", "100.0 MiB"]
    assert rows["state bytes/deal"] == ["", "", "300 B", "417 B", "-"]
    assert rows["runs finished"] == ["3/3", "3/3", "3/3", "3/3", "2/2"]


def test_table_shows_a_dash_for_a_figure_not_measured() -> None:
    rows = _rows(report.format_table(_result(peer_runs=False)))
    assert rows["events/s (median)"][4] == "-"
    assert rows["ratio to peer"][2:] == ["-", "-", "-"]


def test_a_result_of_the_first_schema_still_renders() -> None:
    result = _result()
    del result["floor"], result["pulse_parity"]
    rows = _rows(report.format_table(result))
    assert rows["events/s (median)"][1:3] == ["-", "-"]
    assert rows["ratio to floor"][1] == "-"


def test_ratios_cover_both_modes_and_the_floor() -> None:
    got = report.ratios(100.0, 10.0, 20.0, floor=50.0, parity=30.0)
    assert got == {
        "pulse_to_limit": 0.1, "pulse_to_floor": 0.2, "pulse_to_peer": 0.5,
        "parity_to_limit": 0.3, "parity_to_floor": 0.6, "parity_to_peer": 1.5,
        "peer_to_limit": 0.2, "peer_to_floor": 0.4, "floor_to_limit": 0.5,
    }  # fmt: skip
    assert set(got) == set(report.RATIOS)
    assert report.ratios(100.0, 10.0, None)["parity_to_peer"] is None


def test_targets_say_met_or_missed_by_how_much() -> None:
    text = report.format_targets(_result())
    lines = {line.split(":")[0].strip(): line for line in text.splitlines()[1:]}
    assert lines["parity events/s / peer events/s"].endswith("met")  # 1.556 >= 1.5
    assert "missed by 78%" in lines["full pack events/s / peer events/s"]  # 0.222 vs 1
    assert lines["p99 event -> alert (ms) at the offered load"].endswith("met")  # 39.3 ms
    assert "missed by 20%" in lines["full pack peak RSS / peer peak RSS"]  # 1.2 vs 1
    assert lines["state bytes per deal (full pack)"].endswith("met")
    no_peer = report.format_targets(_result(peer_runs=False))
    assert "not measured" in no_peer


def test_result_schema_is_valid_and_accepts_a_result() -> None:
    jsonschema.Draft202012Validator.check_schema(report.RESULT_SCHEMA)
    jsonschema.validate(_result(), report.RESULT_SCHEMA)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("schema",), "crm-pulse-bench/0"),
        (("pulse", "runs", 0, "finished"), "yes"),
        (("ratios", "pulse_to_peer"), "fast"),
        (("pulse_parity", "mode"), "full"),
        (("pulse", "latency", "rate_source"), None),
        (("limit", "runs", 0, "eps"), -1.0),
    ],
)
def test_result_schema_refuses_a_broken_result(path: tuple[Any, ...], bad: Any) -> None:
    result = _result()
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(result, report.RESULT_SCHEMA)


def test_result_schema_requires_latency_and_memory_of_crm_pulse() -> None:
    result = _result()
    del result["pulse"]["latency"]
    with pytest.raises(jsonschema.ValidationError, match="latency"):
        jsonschema.validate(result, report.RESULT_SCHEMA)


@pytest.mark.parametrize(
    "path",
    [("pulse_parity",), ("pulse", "latency", "target_eps"), ("ratios", "parity_to_peer")],
)
def test_result_schema_requires_both_modes_and_the_latency_rate(path: tuple[str, ...]) -> None:
    result = _result()
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    with pytest.raises(jsonschema.ValidationError, match=path[-1]):
        jsonschema.validate(result, report.RESULT_SCHEMA)


def _rule(**fields: Any) -> Any:
    base = {"id": "r", "message": "m", "applies_to": {"entity": "deal"}}
    return parse_rule({**base, **fields})


def test_parity_rules_are_added_only_for_checks_the_rule_pack_lacks() -> None:
    backwards = _rule(id="mine", type="transition", field="stage", change="backwards",
                      order=["a", "b"])  # fmt: skip
    parity = [
        _rule(id="p-back", type="transition", field="stage", change="backwards", order=["a", "b"]),
        _rule(id="p-amount", type="transition", field="amount", change="changed_by", pct=50),
        _rule(id="p-req", type="required_fields", fields=["amount"]),
    ]
    assert missing_parity([backwards], parity) == ["p-amount", "p-req"]
    disabled = _rule(id="off", type="required_fields", fields=["x"], enabled=False)
    assert missing_parity([backwards, disabled], parity) == ["p-amount", "p-req"]
    assert missing_parity(parity, parity) == []


def test_indexed_deals_keep_their_key_list_in_step_with_the_dict() -> None:
    deals = _IndexedDeals()
    rng = random.Random(5)
    for i in range(200):
        deals[f"d{i}"] = i
        if i % 3 == 0:
            del deals[rng.choice(deals.keys_list)]
    assert sorted(deals.keys_list) == sorted(deals)
    assert len(set(deals.keys_list)) == len(deals.keys_list)


def test_workload_is_seeded_and_spreads_over_the_asked_owners_and_deals() -> None:
    first = generate(3000, deals=500, owners=20, seed=11)
    again = generate(3000, deals=500, owners=20, seed=11)
    assert first.values == again.values
    owners = {v.split(b'"owner_id":"')[1].split(b'"')[0] for v in first.values if b"owner" in v}
    assert 1 < len(owners - {b""}) <= 20
    assert len(set(first.keys)) > 500  # deals are closed and new ones created
    assert all(i is None or len(i) == 36 for i in first.event_ids)
    assert sum(i is None for i in first.event_ids) < len(first) * 0.05


def test_handled_events_are_valid_plus_refused_plus_duplicates() -> None:
    text = "\n".join([
        "# TYPE crm_pulse_events_total counter",
        'crm_pulse_events_total{entity="deal",op="create",source="s"} 10.0',
        'crm_pulse_events_total{entity="deal",op="update",source="s"} 5.0',
        "# TYPE crm_pulse_invalid_events_total counter",
        'crm_pulse_invalid_events_total{reason="bad_json"} 2.0',
        "# TYPE crm_pulse_duplicate_events_total counter",
        "crm_pulse_duplicate_events_total 1.0",
        "# TYPE crm_pulse_alerts_total counter",
        'crm_pulse_alerts_total{rule="r",severity="warning",status="FIRING"} 7.0',
        "",
    ])  # fmt: skip
    metrics = parse_metrics(text)
    assert handled(metrics) == 18
    assert metrics["crm_pulse_alerts_total"] == 7.0


def test_the_parity_catalog_keeps_only_deals_won_and_the_worker_accepts_it(tmp_path: Any) -> None:
    from importlib import resources

    import yaml

    from benchmarks.modes import PARITY_KPIS, prepare, reduced_catalog
    from streams.kpis.catalog import load_catalog

    text = resources.files("streams.kpis").joinpath("catalog.yaml").read_text()
    reduced = yaml.safe_load(reduced_catalog(text, PARITY_KPIS))
    assert [k["id"] for k in reduced["kpis"]] == ["deals_won"]
    assert reduced["windows"] == yaml.safe_load(text)["windows"]
    with pytest.raises(ValueError, match="not in the catalog"):
        reduced_catalog(text, ["no_such_kpi"])
    modes = prepare(Path(__file__).resolve().parents[2] / "rules", tmp_path)
    assert list(load_catalog(Path(modes["parity"].env["CRM_PULSE_KPI_CATALOG"])).ids) == [
        "deals_won"
    ]
    assert sorted(modes["parity"].rules) == sorted(
        ["bench-deal-stage-backwards", "bench-deal-amount-swing", "bench-deal-required-fields"]
    )
    assert len(modes["full"].rules) > len(modes["parity"].rules)
    assert "CRM_PULSE_KPI_CATALOG" not in modes["full"].env


def test_the_latency_phase_reports_the_run_with_the_median_p99_and_keeps_every_run() -> None:
    from benchmarks.run import median_latency

    runs = [
        {"target_eps": 2700, "p50_ms": 10.0, "p99_ms": 120.0, "max_ms": 300.0},
        {"target_eps": 2700, "p50_ms": 12.0, "p99_ms": 50.0, "max_ms": 90.0},
        {"target_eps": 2700, "p50_ms": 11.0, "p99_ms": 90.0, "max_ms": 150.0},
    ]
    latency = median_latency(runs)
    assert latency["p99_ms"] == 90.0 and latency["p50_ms"] == 11.0  # one run, not a mix
    assert [r["p99_ms"] for r in latency["runs"]] == [120.0, 50.0, 90.0]
    assert latency["of_runs"] == 3
    assert median_latency(runs[:2])["p99_ms"] == 120.0  # even: the worse middle one
