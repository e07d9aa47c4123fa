"""CPU time per accepted change of the worker's KPI path alone, no Kafka: the engine's
``kpi_facts`` check (extract + encode), the facts messages of each shipment (group +
encode) and the KPI agent's side (decode + ``KpiStore.apply``), best of ``--repeat``.

The engine runs once, outside the timing; the worker's collector policy is applied.
``--root DIR`` measures another checkout of the project (e.g. the base of a change,
``git worktree add /tmp/base <commit>``) with the same events, for a before/after.

Run: ``python benchmarks/kpi_path.py [--catalog FILE] [--events N] [--root DIR]``
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--catalog", type=Path, default=None, help="KPI catalog (default: shipped)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    from benchmarks.events import generate
    from streams.agents import kpi_facts as agent
    from streams.decode import RawRecord
    from streams.gc_policy import apply_gc_policy
    from streams.judge.batch import Engine
    from streams.kpis.catalog import load_catalog
    from streams.kpis.compute import Context
    from streams.kpis.facts import FactRules
    from streams.kpis.runtime import KpiRuntime
    from streams.kpis.store import KpiStore
    from streams.org import OrgDirectory
    from streams.runtime.shipment import apply_writes
    from streams.settings import Settings

    settings = Settings()
    apply_gc_policy(settings)
    catalog = load_catalog(args.catalog)
    of_catalog = getattr(FactRules, "of_catalog", None)  # a base before it: every fact
    rules = (
        of_catalog(catalog, settings.closed_stages, settings.stage_order)
        if of_catalog
        else FactRules(catalog.params, settings.closed_stages, settings.stage_order)
    )
    workload = generate(args.events)
    records = [
        RawRecord("bench", 0, i, key, value)
        for i, (key, value) in enumerate(zip(workload.keys, workload.values, strict=True))
    ]
    engine = Engine()
    state: dict[bytes, bytes] = {}
    batches = []
    for start in range(0, len(records), settings.batch_max):
        result = engine.process(records[start : start + settings.batch_max], state.get)
        apply_writes(state, result.writes)
        batches.append(result.changes)
    n = sum(len(b) for b in batches)
    directory = OrgDirectory()
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        runtime = KpiRuntime(
            store=KpiStore({}), catalog=catalog, context=Context(settings.stage_order)
        )
        last_day = runtime.last_day()
        spent = {"check": 0.0, "messages": 0.0, "apply": 0.0}
        for changes in batches:
            for change in changes:
                change.derived.clear()
            t0 = time.process_time()
            for change in changes:  # as the engine keeps it
                change.derived[agent.FACTS_STAGE] = agent.check_facts(
                    change, rules, directory, last_day, runtime.skips
                )
            t1 = time.process_time()
            messages = _messages(agent, changes, rules, directory, last_day, runtime.skips)
            t2 = time.process_time()
            for key, body in messages:
                for scope, facts in _read(agent, key, body):
                    runtime.apply(scope, facts)
            t3 = time.process_time()
            spent["check"] += t1 - t0
            spent["messages"] += t2 - t1
            spent["apply"] += t3 - t2
        best = {k: min(best.get(k, v), v) for k, v in spent.items()}
    cells = "  ".join(f"{k} {v / n * 1e6:5.2f}" for k, v in best.items())
    total = sum(best.values()) / n * 1e6
    print(f"{args.root}: {n} changes, catalog {args.catalog or 'shipped'}: {cells}  "
          f"total {total:5.2f} µs/change (CPU, best of {args.repeat})")  # fmt: skip


def _messages(agent: Any, changes: Any, *context: Any) -> list[tuple[bytes | None, bytes]]:
    """The shipment's facts messages as the worker's hook builds them: one per partition
    (4, the benchmark's); a base revision with one message per scope, or whose check
    measured the facts' sizes instead of encoding them, is given its own way."""
    if hasattr(agent, "facts_records"):
        from streams.produce import key_partitioner

        by_scope = agent.checked_facts_by_scope(changes, *context)
        records = agent.facts_records(by_scope, key_partitioner(4), 1.0)
        return [(key, value) for _, key, value in records]
    if "sizes" in inspect.signature(agent.checked_facts_by_scope).parameters:
        sizes: dict[str, list[int]] = {}
        by_scope = agent.checked_facts_by_scope(changes, *context, sizes)
        return list(agent.facts_messages(by_scope, 1.0, sizes=sizes))
    return list(agent.facts_messages(agent.checked_facts_by_scope(changes, *context), 1.0))


def _read(agent: Any, key: bytes | None, body: bytes) -> list[tuple[str, Any]]:
    """The ``(scope, facts)`` of a message, as the kpis agent of that revision reads it."""
    if hasattr(agent, "read_facts"):
        scopes: list[tuple[str, Any]] = agent.read_facts(key, body)[0]
        return scopes
    import orjson

    assert key is not None
    return [(key.decode(), orjson.loads(body)["ev"])]


if __name__ == "__main__":
    main()
