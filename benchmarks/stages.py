"""Offline cost per event of each stage of the worker, on the benchmark's events, no Kafka.

The same code the worker runs (``Engine.process``, its KPI facts, the KPI store and
its snapshots) over an in-memory state, so a change to one stage can be measured alone.
It prints microseconds per event, with the engine without rules as the baseline.

Run: ``make bench-stages`` or ``python benchmarks/stages.py [--events N] [--rules DIR]``;
``--mode parity`` (or ``full``) measures a mode of ``make bench``: its rules and its KPI
catalog (parity: the peer's three checks, ``deals_won`` only).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.events import generate
from streams.agents.kpi_facts import (
    apply_message,
    checked_facts_by_scope,
    facts_check,
    facts_records,
    read_facts,
)
from streams.decode import RawRecord, decode_event
from streams.gc_policy import apply_gc_policy, collector_paused
from streams.judge import Engine
from streams.kpis.catalog import load_catalog
from streams.kpis.compute import Context
from streams.kpis.directory import ReloadingDirectory
from streams.kpis.facts import FactRules
from streams.kpis.runtime import KpiRuntime
from streams.kpis.store import KpiStore
from streams.produce import key_partitioner
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from streams.runtime.shipment import apply_writes
from streams.settings import Settings


@dataclass
class Seconds:
    engine: float = 0.0
    facts: float = 0.0
    store: float = 0.0
    snapshots: float = 0.0
    alerts: int = 0


def run(
    records: list[RawRecord], rules: RuleSet, settings: Settings, kpis: bool,
    check: bool = False,
) -> Seconds:  # fmt: skip
    catalog = load_catalog(settings.kpi_catalog)
    # as the worker builds them: only the facts the catalog reads
    fact_rules = FactRules.of_catalog(catalog, settings.closed_stages, settings.stage_order)
    directory = ReloadingDirectory(settings.kpi_directory).get()
    runtime = KpiRuntime(
        store=KpiStore({}), catalog=catalog, context=Context(stage_order=settings.stage_order)
    )
    engine = Engine(rules)
    partition_of = key_partitioner(settings.topic_partitions)  # as the producer's
    if check:  # as the worker runs it: the KPI facts of each change checked in isolation
        engine.change_checks.append(
            ("kpi_facts", facts_check(fact_rules, lambda: directory, runtime))
        )
    state: dict[bytes, bytes] = {}
    out = Seconds()
    step = settings.batch_max
    for start in range(0, len(records), step):
        t0 = time.perf_counter()
        with collector_paused():  # as the worker judges a batch (streams.agents.ingest)
            result = engine.process(records[start : start + step], state.get)
            apply_writes(state, result.writes)
        out.alerts += len(result.alerts)
        t1 = time.perf_counter()
        out.engine += t1 - t0
        if not kpis or not result.changes:
            continue
        watermark = max(c.event.epoch for c in result.changes)
        # the worker's path: the facts the check kept on each change, or (no check) each
        # change's facts extracted and encoded here; messages as the worker sends them
        by_scope = checked_facts_by_scope(
            result.changes, fact_rules, directory, runtime.last_day(), runtime.skips
        )
        wire = list(facts_records(by_scope, partition_of, watermark))
        t2 = time.perf_counter()
        for _, key, body in wire:  # as the kpis agent applies a message
            apply_message(runtime, *read_facts(key, body))
        t3 = time.perf_counter()
        runtime.collect()  # the worker publishes every second; here once per batch
        t4 = time.perf_counter()
        out.facts += t2 - t1
        out.store += t3 - t2
        out.snapshots += t4 - t3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rules", default="rules")
    parser.add_argument(
        "--mode", choices=("parity", "full"), help="a mode of make bench (its rules and KPIs)"
    )
    args = parser.parse_args()
    if args.mode:
        from benchmarks.modes import prepare

        work = Path(tempfile.mkdtemp(prefix="crm-pulse-stages-"))
        atexit.register(shutil.rmtree, work, True)
        mode = prepare(Path(args.rules), work)[args.mode]
        args.rules = str(mode.rules_dir)
        os.environ.update(mode.env)  # the mode's KPI catalog, read by Settings below
    settings = Settings()
    apply_gc_policy(settings)  # the worker's collector policy (CRM_PULSE_GC_GEN0_THRESHOLD)
    workload = generate(args.events)
    records = [
        RawRecord("bench", 0, i, key, value)
        for i, (key, value) in enumerate(zip(workload.keys, workload.values, strict=True))
    ]
    n = len(records)
    rules = RuleSet.build(r.compiled for r in load_paths([Path(args.rules)]).rules)

    def per_event(seconds: float) -> str:
        return f"{seconds / n * 1e6:8.1f} µs/event"

    t = time.perf_counter()
    now = datetime.now(UTC)
    for record in records:
        decode_event(record, now)
    decode = time.perf_counter() - t
    bare = run(records, RuleSet(), settings, kpis=False)
    full = run(records, rules, settings, kpis=True)
    checked = run(records, rules, settings, kpis=True, check=True)
    total = full.engine + full.facts + full.store + full.snapshots
    print(f"{n} events, {len(rules)} rules, KPI catalog {settings.kpi_catalog or 'default'}")
    print(f"  decode + validate (in the engine)  {per_event(decode)}")
    print(f"  engine without rules (baseline)    {per_event(bare.engine)}")
    print(f"  engine with the rules              {per_event(full.engine)}  ({full.alerts} alerts)")
    print(f"  KPI facts: extract + encode        {per_event(full.facts)}")
    print(f"  engine + KPI facts check (worker)  {per_event(checked.engine)}")
    print(f"  KPI facts reusing the check's      {per_event(checked.facts)}")
    print(f"  KPI store: decode + apply          {per_event(full.store)}")
    print(f"  KPI snapshots (once per batch)     {per_event(full.snapshots)}")
    print(f"  total                              {per_event(total)}  = {n / total:,.0f} events/s")


if __name__ == "__main__":
    main()
