"""KPI math, windows, facts, trust and publication, pure (no broker, no sleeping)."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.clock import ManualClock
from streams.contracts.kpis import KpiSnapshot
from streams.decode import DecodeLimits, RawRecord
from streams.judge import Engine
from streams.kpis.catalog import default_catalog, load_catalog
from streams.kpis.compute import Context
from streams.kpis.directory import ReloadingDirectory, parse_directory
from streams.kpis.exceptions import CatalogError, ReplayError
from streams.kpis.facts import FactRules, facts_by_scope, to_cents, weighted_cents
from streams.kpis.replay import synthesize
from streams.kpis.runtime import KpiRuntime
from streams.kpis.show import render
from streams.kpis.store import KpiStore
from streams.kpis.windows import current, day_of_date, tumbling, week_start
from streams.settings import DEFAULT_STAGE_ORDER

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
YEAR_S = 366 * 86_400.0
DIRECTORY = "owner,team,region\nann,mia,West\nbob,mia,West\ncid,lou,East\n"


class Harness:
    """Engine -> facts -> KPI runtime, in memory; ``value()`` reads a published snapshot."""

    def __init__(self, lateness: int = 7, floor: float = 0.5, skew_days: float = 365) -> None:
        self.clock = ManualClock(T0)
        # event time runs weeks ahead of this clock (fixed at T0 for computed_at): a year's skew
        self.engine = Engine(clock=self.clock, limits=DecodeLimits(max_event_time_skew_s=YEAR_S))
        self.states: dict[bytes, bytes] = {}
        self.catalog = default_catalog()
        self.rules = FactRules(self.catalog.params)
        self.directory = parse_directory(DIRECTORY)
        self.runtime = KpiRuntime(
            store=KpiStore({}), catalog=self.catalog, context=Context(DEFAULT_STAGE_ORDER),
            allowed_lateness_days=lateness, trust_floor=floor, clock=self.clock,
            max_future_skew_s=skew_days * 86400,  # the manual clock stays at T0
        )  # fmt: skip
        self.offset = 0

    def send(self, *events: dict[str, Any]) -> None:
        self.apply(*events)
        self.runtime.collect()

    def apply(self, *events: dict[str, Any]) -> None:
        """Engine -> facts -> KPI store, without a publication round."""
        records = []
        for event in events:
            records.append(RawRecord("t", 0, self.offset, b"k", orjson.dumps(event)))
            self.offset += 1
        result = self.engine.process(records, self.states.get)
        for key, (_, blob) in result.writes.items():
            self.states[key] = blob
        for scope, facts in facts_by_scope(result.changes, self.rules, self.directory).items():
            self.runtime.apply(scope, facts)
        for change in result.changes:
            self.runtime.advance(change.event.occurred_at.timestamp())

    def snap(self, kpi: str, scope: str = "global:all", window: str = "all", **dims: str) -> Any:
        kind, _, sid = scope.partition(":")
        found = [
            s for s in self.runtime.query({"kpi": kpi, "scope_kind": kind, "scope_id": sid,
                                           "window": window})
            if s["dimensions"] == dims
        ]  # fmt: skip
        assert len(found) == 1 or window in ("day", "week", "month"), found
        return found[-1] if found else None

    def value(self, kpi: str, scope: str = "global:all", window: str = "all", **dims: str) -> Any:
        snap = self.snap(kpi, scope, window, **dims)
        return None if snap is None else snap["value"]


def deal(deal_id: str, op: str, at: datetime, owner: str = "ann", event_id: str | None = None,
         **fields: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": event_id or str(uuid.uuid4()), "source": "test", "entity": "deal",
        "entity_id": deal_id, "op": op, "occurred_at": at.isoformat(), "owner_id": owner,
        "fields": fields,
    }  # fmt: skip


FULL = {"account": "Acme", "product": "GTX", "engage_date": "2026-03-02"}


def test_catalog_lists_every_required_kpi_with_its_definition() -> None:
    catalog = default_catalog()
    assert set(catalog.ids) >= {
        "win_rate", "open_pipeline_value", "weighted_pipeline", "avg_won_deal_size",
        "median_sales_cycle", "new_deals", "deals_won", "deals_lost", "stage_conversion",
        "activities_per_owner", "lead_response_time", "required_fields_completeness",
        "stale_open_share",
    }  # fmt: skip
    for kpi in catalog.kpis:
        assert kpi.name and kpi.description and kpi.formula and kpi.unit
    assert set(catalog.windows) == {"day", "week", "month", "rolling7", "rolling30", "all"}


def test_catalog_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("version: 1\nparams: {}\nkpis: []\n")
    with pytest.raises(CatalogError, match=re.escape(str(bad))):
        load_catalog(bad)
    text = (Path(__file__).parents[2] / "streams/kpis/catalog.yaml").read_text()
    bad.write_text(text.replace("id: win_rate", "id: win_ratio"))
    with pytest.raises(CatalogError, match="no computation registered"):
        load_catalog(bad)


def test_windows_are_utc_calendar_days_weeks_months() -> None:
    day = day_of_date(datetime(2026, 3, 4).date())  # a Wednesday
    assert week_start(day) == day - 2
    month = tumbling("month", day)
    assert (month.start, month.end) == (day - 3, day - 3 + 31)
    assert current("rolling7", day).start == day - 6 and current("rolling7", day).end == day + 1
    assert current("rolling30", day).start == day - 29


def test_won_counts_once_duplicates_and_no_op_updates_count_zero() -> None:
    h = Harness()
    h.send(deal("D1", "create", T0, stage="Negotiation", amount=1000, **FULL))
    won = deal("D1", "update", T0 + timedelta(hours=2), stage="Won", amount=1200)
    h.send(won)
    h.send(won)  # same event_id: a duplicate
    h.send(deal("D1", "update", T0 + timedelta(hours=3), stage="Won"))  # no change
    h.send(deal("D1", "update", T0 + timedelta(hours=4), note="called back"))  # not relevant
    assert h.value("deals_won") == 1
    assert h.value("new_deals") == 1
    assert h.value("win_rate") == 1.0
    assert h.value("avg_won_deal_size") == 1200.0
    assert h.value("stage_conversion", from_stage="Negotiation") == 1.0
    assert h.value("open_pipeline_value") == 0.0


def test_pipeline_weighted_average_and_win_rate_math() -> None:
    h = Harness()
    h.send(
        deal("A", "create", T0, stage="Negotiation", amount=1000.005, **FULL),
        deal("B", "create", T0, stage="Prospecting", amount=333.33, **FULL),
        deal("C", "create", T0, owner="cid", stage="Engaging", amount=100, **FULL),
        deal("D", "create", T0, owner="cid", stage="Engaging", **FULL),  # no amount
    )
    assert to_cents(1000.005) == 100000  # half-even to the cent
    assert h.value("open_pipeline_value") == 1000.00 + 333.33 + 100
    assert (
        h.value("weighted_pipeline")
        == (weighted_cents(100000, 0.7) + weighted_cents(33333, 0.1) + weighted_cents(10000, 0.3))
        / 100
    )
    assert weighted_cents(33333, 0.1) == 3333  # 3333.3 -> 3333
    snap = h.snap("open_pipeline_value")
    completeness = snap["trust"]["reasons"][0]
    assert completeness == {"name": "completeness", "value": 0.75,
                            "detail": "3/4 open deals with an amount"}  # fmt: skip
    assert h.value("open_pipeline_value", "region:East") == 100.0
    assert h.value("open_pipeline_value", "team:mia") == 1333.33
    h.send(
        deal("A", "update", T0 + timedelta(days=1), stage="Won", amount=1000.01),
        deal("B", "update", T0 + timedelta(days=1), stage="Won", amount=0.02),
        deal("C", "update", T0 + timedelta(days=1), owner="cid", stage="Lost"),
    )
    assert h.value("win_rate") == 2 / 3
    assert h.value("avg_won_deal_size") == 500.02  # (100001 + 2) / 2 = 50001.5 -> 50002 cents
    assert h.value("deals_lost", "owner:cid") == 1
    assert h.value("win_rate", "team:mia") == 1.0


def test_median_sales_cycle_is_exact_in_days() -> None:
    h = Harness()
    for i, days in enumerate([3, 10, 1, 7]):
        start = T0 - timedelta(days=days)
        h.send(deal(f"M{i}", "create", start, stage="Engaging",
                    **{**FULL, "engage_date": start.date().isoformat()}))  # fmt: skip
    for i in range(4):
        h.send(deal(f"M{i}", "update", T0 + timedelta(hours=1), stage="Won", amount=1))
    assert h.value("median_sales_cycle") == 5.0  # (3 + 7) / 2
    h.send(deal("M9", "create", T0, stage="Won", amount=5, **FULL))  # created won: cycle 0
    assert h.value("median_sales_cycle") == 3.0


def test_late_events_within_lateness_land_in_their_window_later_ones_are_counted() -> None:
    h = Harness(lateness=7)
    h.send(deal("L1", "create", T0 + timedelta(days=40), stage="Engaging", **FULL))
    h.send(deal("L2", "create", T0 + timedelta(days=35), stage="Engaging", **FULL))
    h.send(deal("L3", "create", T0 + timedelta(days=2), stage="Engaging", **FULL))  # too late
    assert h.runtime.late == 4  # one event, counted late in each of its 4 scopes
    found = h.runtime.query({"kpi": "new_deals", "scope_kind": "global", "window": "month"})
    by_start = {s["window"]["start"][:7]: s["value"] for s in found}
    april = by_start["2026-04"]
    assert april == 2.0 and by_start.get("2026-03", 0.0) == 0.0, by_start
    assert h.value("new_deals") == 2


def test_stale_share_follows_the_watermark_and_resets_on_change() -> None:
    h = Harness()
    h.send(deal("S1", "create", T0, stage="Engaging", amount=10, **FULL))
    h.send(deal("S2", "create", T0, stage="Engaging", amount=10, **FULL))
    h.send(deal("X", "create", T0 + timedelta(days=29), stage="Engaging", **FULL))
    assert h.value("stale_open_share") == 0.0
    h.send(deal("S2", "update", T0 + timedelta(days=29, hours=1), note="still alive"))
    h.send(deal("X", "update", T0 + timedelta(days=30), stage="Proposal"))
    assert h.value("stale_open_share") == 1 / 3  # S1 idle 30 days; S2 and X changed
    h.send(deal("S1", "update", T0 + timedelta(days=31), stage="Lost"))
    assert h.value("stale_open_share") == 0.0


def test_required_fields_completeness_counts_dirty_records() -> None:
    h = Harness()
    h.send(
        deal("Q1", "create", T0, stage="Engaging", amount=5, **FULL),
        deal("Q2", "create", T0, stage="Engaging", amount=5, product="GTX", account="  "),
        deal("Q3", "create", T0, stage="Prospecting", account="A", product="P"),
    )
    assert h.value("required_fields_completeness") == 1 / 3
    h.send(deal("Q2", "update", T0 + timedelta(hours=1), account="Acme", engage_date="2026-03-01"))
    assert h.value("required_fields_completeness") == 2 / 3


def test_activities_and_lead_response_time() -> None:
    h = Harness()
    for i, owner in enumerate(["ann", "ann", "ann", "bob"]):
        h.send({"event_id": f"a{i}", "source": "t", "entity": "activity", "entity_id": f"A{i}",
                "op": "create", "occurred_at": T0.isoformat(), "owner_id": owner,
                "fields": {"type": "call"}})  # fmt: skip
    assert h.value("activities_per_owner") == 2.0
    assert h.value("activities_per_owner", "owner:ann") == 3.0
    for i, minutes in enumerate([30, 90, 10]):
        lead = {"source": "t", "entity": "lead", "entity_id": f"L{i}", "owner_id": "bob"}
        h.send({**lead, "event_id": f"l{i}", "op": "create", "occurred_at": T0.isoformat(),
                "fields": {"status": "New"}})  # fmt: skip
        h.send({**lead, "event_id": f"l{i}b", "op": "update",
                "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
                "fields": {"status": "Contacted"}})  # fmt: skip
    assert h.value("lead_response_time") == 30.0


def test_trust_reasons_and_untrusted_flag() -> None:
    h = Harness(floor=0.5)
    h.send(deal("T1", "create", T0, stage="Engaging", **FULL))
    h.send(deal("T1", "update", T0 + timedelta(hours=1), stage="Won", amount=10))
    snap = h.snap("win_rate")
    reasons = {r["name"]: r["value"] for r in snap["trust"]["reasons"]}
    assert reasons == {"completeness": 1.0, "freshness": 1.0, "sample_size": 1 / 20}
    assert snap["trust"]["value"] == 1 / 20 and snap["untrusted"] is True
    assert h.snap("deals_won")["untrusted"] is False  # counts have no minimum sample
    # an owner silent for long while others go on: freshness drops in the open windows
    h.send(deal("T2", "create", T0 + timedelta(days=20), owner="cid", stage="Engaging", **FULL))
    fresh = {r["name"]: r for r in h.snap("deals_won", "owner:ann")["trust"]["reasons"]}
    assert fresh["freshness"]["value"] == pytest.approx(1 - (20 - 7) / 21)
    assert "20 day(s) behind" in fresh["freshness"]["detail"]
    KpiSnapshot.model_validate(snap)  # the published body honours the contract
    assert snap["computed_at"] == T0.isoformat().replace("+00:00", "Z")  # injected clock


def test_snapshots_validate_against_contract_and_render() -> None:
    h = Harness()
    h.send(deal("R1", "create", T0, stage="Engaging", amount=5, **FULL))
    bodies = h.runtime.query({})
    assert bodies
    for body in bodies:
        model = KpiSnapshot.model_validate(body)
        assert model.key().startswith(model.kpi + "|")
    table = render(h.runtime.query({"kpi": "open_pipeline_value", "scope_kind": "global"}))
    assert "open_pipeline_value" in table and "5.00" in table and "global:all" in table


def test_directory_reloads_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "teams.csv"
    path.write_text("sales_agent,manager,regional_office\nann,mia,West\n")
    ticks = iter(range(100))
    directory = ReloadingDirectory(path, interval=1.0, monotonic=lambda: float(next(ticks)))
    assert directory.get().scopes("ann") == ("owner:ann", "team:mia", "region:West", "global:all")
    path.write_text("owner,team,region\nann,lou,East\n")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    assert directory.get().scopes("ann")[1:3] == ("team:lou", "region:East")
    assert directory.get().scopes("zed")[1] == "team:unassigned"
    path.write_text("no,header,here\n")
    os.utime(path, ns=(2, 2))
    assert directory.get().scopes("ann")[1] == "team:lou"  # keeps the last good one


def test_replay_synthesizes_ordered_events_and_refuses_other_layouts(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text("product,series,sales_price\nGTX Pro,GTX,4821\n")
    (tmp_path / "sales_teams.csv").write_text("sales_agent,manager,regional_office\nann,mia,West\n")
    (tmp_path / "sales_pipeline.csv").write_text(
        "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\r\n"
        "W1,ann,GTXPro,Acme,Won,2017-01-05,2017-02-01,4500\r\n"
        "P1,ann,GTX Pro,,Prospecting,,,\r\n"
        "E1,ann,GTX Pro,Beta,Engaging,2017-01-02,,\r\n"
    )
    events = [e.value for e in synthesize(tmp_path)]
    # the dateless deal is created at the as-of instant (latest date), creates before closes
    assert [(e["entity_id"], e["op"]) for e in events] == [
        ("E1", "create"),
        ("W1", "create"),
        ("P1", "create"),
        ("W1", "update"),
    ]
    assert events[0]["fields"]["amount"] == 4821 and "amount" not in events[1]["fields"]
    assert (
        events[2]["occurred_at"].startswith("2017-02-01") and "account" not in events[2]["fields"]
    )
    assert events[3]["fields"] == {
        "stage": "Won",
        "close_date": "2017-02-01",
        "close_value": 4500,
        "amount": 4500,
    }
    assert events[3]["event_id"] == "W1:close"
    (tmp_path / "products.csv").unlink()
    with pytest.raises(ReplayError, match=r"products\.csv"):
        synthesize(tmp_path)


def test_kpi_snapshot_json_schema_is_exported_and_committed() -> None:
    import json

    from streams.schemas import all_schemas

    schema = all_schemas()["kpi-snapshot.schema.json"]
    assert {"kpi", "scope", "window", "value", "unit", "trust", "untrusted", "computed_at"} <= set(
        schema["properties"]
    )
    schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
    committed = Path(__file__).parents[2] / "schemas" / "kpi-snapshot.schema.json"
    assert json.loads(committed.read_text()) == schema


def test_facts_sent_twice_count_once_by_input_position() -> None:
    """A crash between sending facts and committing the input replays the same offsets:
    the store recognises them by (partition, offset), per partition, whatever the batch."""
    store = KpiStore({})
    won = [["w", 120000, 3]]
    first = [[[0, 10], 100, won, {}], [[0, 11], 100, won, {}]]
    assert store.apply("global:all", first, late_before=0).applied == 2
    replay = [[[0, 11], 100, won, {}], [[0, 12], 100, won, {}], [[1, 11], 100, won, {}]]
    result = store.apply("global:all", replay, late_before=0)
    assert (result.applied, result.duplicates) == (2, 1)
    assert store.load("global:all").buckets[100]["w"] == 4
    assert store.meta("global:all")["hw"] == {"0": 12, "1": 11}


def test_collect_parts_gives_one_scope_at_a_time_and_facts_applied_meanwhile_wait() -> None:
    h = Harness()
    h.apply(
        deal("d1", "create", T0, owner="ann", stage="Prospecting", amount=100, **FULL),
        deal("d2", "create", T0, owner="cid", stage="Prospecting", amount=50, **FULL),
    )
    parts = h.runtime.collect_parts()
    first = next(parts)
    assert first and len({body["scope"]["id"] for _, body in first}) == 1  # one scope
    # a fact applied between two parts: its scope is dirty for the next round
    h.apply(deal("d3", "create", T0, owner="bob", stage="Prospecting", amount=7, **FULL))
    rest = [snap for part in parts for snap in part]
    scopes = {f"{b['scope']['kind']}:{b['scope']['id']}" for _, b in first + rest}
    assert {"owner:ann", "owner:cid", "team:mia", "team:lou", "global:all"} <= scopes
    assert "owner:bob" not in scopes
    later = {f"{b['scope']['kind']}:{b['scope']['id']}" for _, b in h.runtime.collect()}
    assert "owner:bob" in later and "owner:ann" not in later


def test_kpi_bucket_writes_reach_the_table_at_once_and_the_shipper_per_changelog() -> None:
    from streams.agents.kpis import ChangelogWrites
    from streams.judge.result import BatchResult
    from streams.runtime.shipment import merge

    data: dict[bytes, bytes] = {}
    writes = ChangelogWrites(data)
    store = KpiStore(data, write=writes)
    writes.partition = 3
    store.apply("owner:ann", [[[0, 1], 20000, [["n"]], {}]], -(10**9))
    writes.partition = 1
    store.apply("global:all", [[[0, 1], 20000, [["n"]], {}]], -(10**9))
    store.apply("global:all", [[[0, 2], 20000, [["l"]], {}]], -(10**9))
    assert (
        set(data)
        == set(writes.writes)
        == {b"owner:ann|20000", b"owner:ann|meta", b"global:all|20000", b"global:all|meta"}
    )
    assert {k: p for k, (p, _) in writes.writes.items()} == {
        b"owner:ann|20000": 3,
        b"owner:ann|meta": 3,
        b"global:all|20000": 1,
        b"global:all|meta": 1,
    }
    assert all(data[k] is v for k, (_, v) in writes.writes.items())  # the last value
    assert orjson.loads(data[b"global:all|20000"]) == {"d": {}, "n": 1, "l": 1}
    # shipped with an ingest result in one shipment, each changelog its own writes
    ingest = BatchResult(writes={b"deal:D1": (0, b"{}")})
    shipment = merge([(ingest, "entity-changelog"), (BatchResult(writes=writes.writes), "kpi")])
    assert shipment.writes == {"entity-changelog": ingest.writes, "kpi": writes.writes}
