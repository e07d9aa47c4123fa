"""Differential check of rule judging: one recorded stream through a source tree's change
path, timers, KPI rules, a rule swap (one rule deleted, one retyped) and the dry run; writes
every alert (full JSON, in order), every final state (decoded), the batch counts and the dry
run's report to OUT, and prints a digest. Run it on two trees and compare the files:

    git archive <rev> | tar -x -C /tmp/before
    PYTHONHASHSEED=0 .venv/bin/python benchmarks/judge_diff.py /tmp/before /tmp/before.txt
    PYTHONHASHSEED=0 .venv/bin/python benchmarks/judge_diff.py . /tmp/after.txt
    cmp /tmp/before.txt /tmp/after.txt

``PYTHONHASHSEED`` fixed: the order in which one record's rules fire follows the iteration
order of a set of field names, which changes with the hash seed between processes.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

TREE = str(Path(sys.argv[1]).resolve())
sys.path.insert(0, TREE)

EXTRA = """
rules:
  - id: diff-deal-idle
    type: inactivity
    after: P1D
    activity_fields: [stage, amount]
    condition: deal.stage != "Won" && deal.stage != "Lost"
    realert: {every: PT12H, backoff: 2.0, max_every: P2D}
    escalate_after: 1
    message: "Deal {deal.name} idle since {evidence.idle_since}"
  - id: diff-close-date-passed
    type: overdue
    field: close_date
    condition: deal.stage != "Won" && deal.stage != "Lost"
    realert: {every: P1D}
    message: "Deal {deal.name}: close date {evidence.value} passed"
  - id: diff-many-amount-edits
    type: frequency
    count: 2
    window: P1D
    fields: [amount]
    message: "Amount of {subject.id} edited {evidence.count} times in a day"
  - id: diff-win-rate-low
    type: kpi_threshold
    kpi: win_rate
    scope_kinds: [team]
    min: 0.3
    sustain: PT1H
    realert: {every: PT2H}
    escalate_after: 1
    message: "Win rate of {kpi.scope} at {kpi.value}"
  - id: diff-won-high
    type: kpi_threshold
    kpi: deals_won
    max: 5
    message: "Deals won {kpi.scope} at {kpi.value}"
"""
RETYPED = """
rules:
  - id: deal-lost-without-reason
    version: 2
    type: condition
    applies_to: {entity: deal}
    condition: deal.stage == "Lost"
    message: "{subject.id} lost"
  - id: deal-close-date-pushed-twice
    version: 2
    type: condition
    applies_to: {entity: deal}
    condition: deal.stage == "Negotiation"
    message: "{subject.id} in negotiation"
"""


def main() -> None:
    import streams
    from benchmarks.events import START, generate
    from streams.decode import RawRecord
    from streams.org import OrgDirectory
    from streams.rules.loader import load_paths, load_text
    from streams.rules.ruleset import RuleSet

    assert streams.__file__ is not None and streams.__file__.startswith(TREE), streams.__file__
    try:
        from streams.judge.dryrun import run_events
    except ImportError:  # a tree from before streams/judge/
        from streams.rules.dryrun import run_events  # type: ignore[import-not-found,no-redef]
    try:
        from streams.judge import BatchResult, Engine, Judge, judge_due, judge_points

        def fire_due(rules: Any, keys: Any, lookup: Any, now: Any, org: Any) -> Any:
            return judge_due(Judge(rules, BatchResult(), org=org), keys, lookup, now)

        def process_kpis(rules: Any, records: Any, lookup: Any, now: Any) -> Any:
            return judge_points(Judge(rules, BatchResult()), records, lookup, now)
    except ImportError:  # a tree from before streams/judge/
        from streams.alerting.timed import (  # type: ignore[import-not-found,no-redef]
            fire_due,
            process_kpis,
        )
        from streams.engine import Engine  # type: ignore[import-not-found,no-redef]

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "extra.yaml").write_text(EXTRA)
        loaded = [r.compiled for r in load_paths([Path(TREE) / "rules", Path(tmp)]).rules]
    rules = RuleSet.build(loaded)
    w = generate(60_000)
    records = [
        RawRecord("bench", i % 3, i, k, v,
                  int((START + timedelta(seconds=i)).timestamp() * 1000))
        for i, (k, v) in enumerate(zip(w.keys, w.values, strict=True))
    ]  # fmt: skip
    clock_at = [START + timedelta(days=2)]
    engine = Engine(rules, clock=lambda: clock_at[0])
    table: dict[bytes, bytes] = {}
    alerts: list[str] = []
    stats: list[Any] = []

    def take(result: Any) -> None:
        alerts.extend(a.model_dump_json() for a in result.alerts)
        for key, (_, blob) in result.writes.items():
            if blob is None:
                table.pop(key, None)
            else:
                table[key] = blob
        s = result.stats
        stats.append((
            sorted(s.events.items()), sorted(s.invalid.items()), s.duplicates, s.replays,
            s.out_of_order, s.no_change, sorted(s.rule_errors.items()), sorted(s.skips.items()),
            len(result.dead), len(result.changes), sorted(result.due.items()),
        ))  # fmt: skip

    for s in range(0, 50_000, 2000):
        take(engine.process(records[s : s + 2000], table.get))
    take(engine.process(records[:3000], table.get))  # replays: same positions
    again = [RawRecord("bench", 0, 100_000 + i, r.key, r.value, r.timestamp_ms)
             for i, r in enumerate(records[3000:6000])]  # fmt: skip
    take(engine.process(again, table.get))  # redeliveries: new offsets
    org = OrgDirectory()
    for days in (3, 4, 5, 8, 12):
        take(fire_due(rules, sorted(table), table.get, START + timedelta(days=days), org))
    points = []
    for i in range(400):
        when = (START + timedelta(days=2, minutes=20 * i)).isoformat()
        points.append(orjson.dumps({
            "kpi": "win_rate", "scope": {"kind": "team", "id": f"t{i % 4}"},
            "window": {"kind": "rolling_30d", "end": "2026-02-01"},
            "value": ((i * 37) % 100) / 100, "trust": {"value": 0.9}, "computed_at": when,
        }))  # fmt: skip
        points.append(orjson.dumps({
            "kpi": "deals_won", "scope": {"kind": "owner", "id": f"o{i % 7}"},
            "window": {"kind": "day"}, "value": (i * 13) % 9, "computed_at": when,
        }))  # fmt: skip
    points += [b"{broken", orjson.dumps({"kpi": "win_rate"})]
    for s in range(0, len(points), 50):
        batch = [RawRecord("kpis", j % 2, s + j, None, v) for j, v in enumerate(points[s : s + 50])]
        at = START + timedelta(days=2, minutes=20 * (s // 2))
        take(process_kpis(rules, batch, table.get, at))
        series = sorted(k for k in table if k.startswith(b"kpi:"))
        take(fire_due(rules, series, table.get, at + timedelta(minutes=150), org))
    # one rule deleted, one retyped: their open episodes end; then more events and timers
    retyped = load_text(RETYPED)
    swapped = {c.id: c for c in loaded if c.id not in {"deal-stage-backwards", "diff-win-rate-low"}}
    swapped.update({r.compiled.id: r.compiled for r in retyped.rules})
    engine.rules = RuleSet.build(swapped.values())
    clock_at[0] = START + timedelta(days=3)
    for s in range(50_000, 60_000, 2000):
        take(engine.process(records[s : s + 2000], table.get))
    take(fire_due(engine.rules, sorted(table), table.get, START + timedelta(days=20), org))
    dry = run_events(rules, w.values[:30_000], clock=lambda: START + timedelta(days=2))
    alerts.extend(a.model_dump_json() for a in dry.alerts)
    states = {k.decode(): orjson.loads(v) for k, v in sorted(table.items())}
    out = Path(sys.argv[2])
    with out.open("wb") as f:
        for alert in alerts:
            f.write(alert.encode() + b"\n")
        f.write(orjson.dumps(states, option=orjson.OPT_SORT_KEYS) + b"\n")
        f.write(orjson.dumps(stats, default=str) + b"\n")
        f.write(orjson.dumps([dry.events, dry.refused, sorted(dry.rule_errors.items())]) + b"\n")
    statuses = dict(Counter(orjson.loads(a)["status"] for a in alerts))
    digest = hashlib.sha1(out.read_bytes()).hexdigest()[:16]
    print(f"{TREE}: {len(alerts)} alerts {statuses}, {len(states)} states, digest {digest}")


if __name__ == "__main__":
    main()
