"""The Maven dataset through engine -> facts -> KPI runtime in memory (no broker): every
cell equal to the independent batch computation. Fast feedback for the replay test."""

from __future__ import annotations

from streams.decode import RawRecord
from streams.judge import Engine
from streams.kpis.catalog import default_catalog
from streams.kpis.compute import Context
from streams.kpis.directory import parse_directory
from streams.kpis.facts import FactRules, facts_by_scope
from streams.kpis.replay import synthesize
from streams.kpis.runtime import KpiRuntime
from streams.kpis.store import KpiStore
from streams.settings import DEFAULT_STAGE_ORDER
from tests.maven_batch import MAVEN, cells_of, expected


def test_maven_dataset_in_memory_equals_batch_computation() -> None:
    events = synthesize(MAVEN)
    catalog = default_catalog()
    rules = FactRules(catalog.params)
    directory = parse_directory((MAVEN / "sales_teams.csv").read_text())
    engine = Engine()
    states: dict[bytes, bytes] = {}
    runtime = KpiRuntime(store=KpiStore({}), catalog=catalog,
                         context=Context(DEFAULT_STAGE_ORDER), allowed_lateness_days=0)  # fmt: skip
    for i in range(0, len(events), 1000):
        chunk = events[i : i + 1000]
        records = [RawRecord("t", 0, i + j, e.key, e.encoded()) for j, e in enumerate(chunk)]
        result = engine.process(records, states.get)
        for key, (_, blob) in result.writes.items():
            states[key] = blob
        for scope, facts in facts_by_scope(result.changes, rules, directory).items():
            runtime.apply(scope, facts)
        for change in result.changes:  # as the agent: the batch's watermark after its facts
            runtime.advance(change.event.occurred_at.timestamp())
        if i % 4000 == 0:
            runtime.collect()  # intermediate publications must not leave stale values
    runtime.collect()
    assert runtime.late == 0  # in order: nothing late even with zero allowed lateness
    got = cells_of(list(runtime.published.values()))
    want, _ = expected()
    assert set(got) == set(want)
    wrong = {k: (want[k], got[k]) for k in want if got[k] != want[k]}
    assert not wrong, list(wrong.items())[:10]
