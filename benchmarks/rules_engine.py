"""Engine throughput with the starter rule pack, offline (no Kafka): the same
``Engine.process`` path the worker runs, over seeded simulator events.

Run: ``python benchmarks/rules_engine.py [--events N]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.judge.dryrun import run_events
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from streams.simulator import DealSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rules", default="rules")
    args = parser.parse_args()
    loaded = load_paths([Path(args.rules)])
    rules = RuleSet.build(r.compiled for r in loaded.rules)
    sim = DealSimulator(seed=3, dirty_rate=0.05)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    lines = [v for _, v in sim.stream(start, timedelta(seconds=30), args.events)]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        run = run_events(rules, lines)
        best = min(best, time.perf_counter() - t)
    print(f"{len(rules)} rules, {len(lines)} events: best of 3 {best:.2f} s, "
          f"{len(lines) / best:,.0f} events/s, {len(run.alerts)} alerts")  # fmt: skip
    for rule_id, n in Counter(a.rule_id for a in run.alerts).most_common():
        print(f"  {rule_id:<45} {n}")


if __name__ == "__main__":
    main()
