"""A deterministic simulator stream through the KPI path (facts -> store -> snapshots), with
a digest of every publication round, so a change to the KPI code can be checked against
the output recorded before it (``tests/unit/data/kpi_equivalence.json.gz``).

Two streams of 50,000 simulator events each:

- ``bench``: the benchmark's workload (``benchmarks/events.py``: 200 reps, one event per
  second, one UTC day), batches of 2,000 as the worker takes them;
- ``span``: 50 reps in teams and regions, one event every 5 minutes (about 174 days, so
  every window kind opens and closes), batches of 1,000, with the hard cases: events held
  back 3 and 12 days (late but counted; past the allowed lateness), batches shuffled,
  facts messages sent twice (a replay: deduplicated by input position) and a clock step.

Each round records the published ``(key, snapshot)`` list (order and content, with
``computed_at`` from a manual clock) as a digest; the end records one digest per scope of
the ``GET /kpis`` cache and the counters. Regenerate (only on purpose, with the reason in
the commit): ``python -m tests.unit.kpi_stream --record``. The process time of each
stage: ``python -m tests.unit.kpi_stream --time``.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from benchmarks.events import generate
from streams.agents.kpi_facts import apply_message, encoded_by_scope, facts_records, read_facts
from streams.clock import ManualClock
from streams.decode import RawRecord
from streams.judge import Engine
from streams.kpis.catalog import Catalog, load_catalog
from streams.kpis.compute import Context
from streams.kpis.facts import FactRules, batch_watermark, facts_by_scope
from streams.kpis.runtime import KpiRuntime
from streams.kpis.skips import Skips
from streams.kpis.store import KpiStore
from streams.org import OrgDirectory, Person
from streams.produce import key_partitioner
from streams.settings import DEFAULT_STAGE_ORDER
from streams.simulator import default_owners, org_of

REFERENCE = Path(__file__).parent / "data" / "kpi_equivalence.json.gz"
EVENTS = 50_000
#: The facts topic's partitioning, as the worker's producer does it (4 partitions).
PARTITION_OF = key_partitioner(4)


@dataclass(frozen=True)
class StreamSpec:
    name: str
    owners: int
    step_s: float
    batch: int
    org: bool
    hard_cases: bool


SPECS = (
    StreamSpec("bench", owners=200, step_s=1.0, batch=2000, org=False, hard_cases=False),
    StreamSpec("span", owners=50, step_s=300.0, batch=1000, org=True, hard_cases=True),
)


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


@cache
def _records(spec: StreamSpec, events: int = EVENTS) -> list[RawRecord]:
    """The stream's input records (cached: read, never modified)."""
    workload = generate(events, owners=spec.owners, step_s=spec.step_s, seed=11)
    pairs = list(zip(workload.keys, workload.values, strict=True))
    if spec.hard_cases:  # hold some events back: 3 days (late, counted), 12 days (too late)
        for every, days in ((53, 3), (211, 12)):
            shift = int(days * 86400 / spec.step_s)
            for i in range(len(pairs) - shift - 1, 0, -every):
                pairs.insert(i + shift, pairs.pop(i))
    return [RawRecord("crm.events", i % 2, i, k, v) for i, (k, v) in enumerate(pairs)]


def _batches(spec: StreamSpec, records: list[RawRecord]) -> Iterator[list[RawRecord]]:
    rng = random.Random(5)
    for start in range(0, len(records), spec.batch):
        batch = records[start : start + spec.batch]
        if spec.hard_cases and rng.random() < 0.2:
            batch = batch[:]
            rng.shuffle(batch)
        yield batch


def run_stream(
    spec: StreamSpec,
    seconds: dict[str, float] | None = None,
    catalog: Catalog | None = None,
    restrict: bool = False,
    events: int = EVENTS,
) -> dict[str, Any]:
    """The digests of one stream's publication rounds, final cache and counters; the
    process time of each KPI stage is added to ``seconds`` when given. ``catalog``
    replaces the shipped one; ``restrict`` extracts only the facts it reads (otherwise
    every fact, as for the full catalog)."""
    spent = seconds if seconds is not None else {}
    tick = time.process_time
    catalog = catalog if catalog is not None else load_catalog(None)
    rules = (
        FactRules.of_catalog(catalog, ("Won", "Lost"), DEFAULT_STAGE_ORDER)
        if restrict
        else FactRules(catalog.params, ("Won", "Lost"), DEFAULT_STAGE_ORDER)
    )
    owners = default_owners(spec.owners)
    directory = (
        OrgDirectory({o: Person(team=org_of(o)[0], region=org_of(o)[1]) for o in owners})
        if spec.org
        else OrgDirectory()
    )
    records = _records(spec, events)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    skips = Skips()
    runtime = KpiRuntime(
        store=KpiStore({}),
        catalog=catalog,
        context=Context(stage_order=DEFAULT_STAGE_ORDER),
        clock=clock,
        skips=skips,
    )
    engine = Engine(clock=ManualClock(datetime(2030, 1, 1, tzinfo=UTC)))
    state: dict[bytes, bytes] = {}
    rounds: list[list[Any]] = []
    rng = random.Random(9)
    for number, batch in enumerate(_batches(spec, records)):
        result = engine.process(batch, state.get)
        for key, (_, blob) in result.writes.items():
            state[key] = blob
        if not result.changes:
            continue
        # the KPI clock follows the event time, a few hours ahead (once a day behind it)
        latest = max(c.event.occurred_at for c in result.changes)
        clock.advance(latest + timedelta(hours=6 if number != 17 else -30) - clock())
        t0 = tick()
        by_scope = facts_by_scope(result.changes, rules, directory, runtime.last_day(), skips)
        wm = batch_watermark(result.changes, runtime.latest_allowed())
        if wm is None:  # as the worker does: the watermark so far
            wm = runtime.watermark if runtime.watermark is not None else 0.0
        # the worker's wire: one message per partition of the facts topic
        encoded = encoded_by_scope(by_scope)
        wire = list(facts_records(encoded, PARTITION_OF, wm))
        spent["wire_bytes"] = spent.get("wire_bytes", 0) + sum(len(body) for *_, body in wire)
        if spec.hard_cases and rng.random() < 0.15:  # a replay: half the scopes' facts again
            again = dict(list(encoded.items())[: len(encoded) // 2])
            wire += facts_records(again, PARTITION_OF, wm)
        t1 = tick()
        for _, key, body in wire:  # as the kpis agent applies a message
            apply_message(runtime, *read_facts(key, body))
        t2 = tick()
        snaps = runtime.collect()
        t3 = tick()
        for stage, took in (("facts", t1 - t0), ("store", t2 - t1), ("snapshots", t3 - t2)):
            spent[stage] = spent.get(stage, 0.0) + took
        spent["changes"] = spent.get("changes", 0) + len(result.changes)
        rounds.append([len(snaps), digest(snaps), digest(sorted(snaps, key=lambda s: s[0]))])
    per_scope: dict[str, list[Any]] = {}
    for key, body in sorted(runtime.published.items()):
        per_scope.setdefault(key.split("|")[1], []).append([key, body])
    return {
        "rounds": rounds,
        "final": {scope: digest(items) for scope, items in per_scope.items()},
        "published": len(runtime.published),
        "counters": runtime.status(),
        "skips": sorted([s, r, n] for s, r, n, _ in skips.drain()),
    }


def run_all() -> dict[str, Any]:
    return {spec.name: run_stream(spec) for spec in SPECS}


def load_reference() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(gzip.decompress(REFERENCE.read_bytes()))
    return loaded


def time_stages(repeat: int = 1) -> None:
    """Process time per accepted change of each KPI stage, per stream (best of ``repeat``)."""
    for spec in SPECS:
        runs = []
        for _ in range(repeat):
            spent: dict[str, float] = {}
            run_stream(spec, spent)
            runs.append(spent)
        n = runs[0]["changes"]
        cells = [
            f"{stage} {min(r[stage] for r in runs) / n * 1e6:6.1f}"
            for stage in ("facts", "store", "snapshots")
        ]
        print(f"{spec.name:6s} " + "  ".join(cells) + "  µs per change (process time)")


if __name__ == "__main__":
    if "--time" in sys.argv:
        time_stages()
        sys.exit(0)
    if "--record" not in sys.argv:
        sys.exit("usage: python -m tests.unit.kpi_stream --record | --time")
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_bytes(gzip.compress(orjson.dumps(run_all()), mtime=0))
    print(f"recorded {REFERENCE}")
