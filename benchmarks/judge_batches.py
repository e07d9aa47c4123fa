"""CPU time per event of the change path as the ingest agent runs it, beside another checkout.

The benchmark's events (``benchmarks/events.py``) through ``Engine.process`` in batches of
``BATCH_MAX`` with the rules of ``rules/`` and the worker's collector policy, the states
written back as the agent does; with ``--paused`` each batch runs inside the ingest agent's
``collector_paused`` (as the worker does since it exists). Thread CPU time, best of
``--repeat`` rounds. ``--tree DIR`` runs the same measurement on another checkout (e.g. a
``git worktree`` of the base), in a subprocess, interleaved round by round with this one.

Run: ``python benchmarks/judge_batches.py [--events N] [--repeat R] [--tree DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(root: Path, events: int, paused: bool) -> float:
    """Seconds of CPU per event of one run over ``events`` events, in this process."""
    sys.path.insert(0, str(root))
    from benchmarks.events import generate
    from streams.decode import RawRecord
    from streams.gc_policy import apply_gc_policy
    from streams.judge.batch import Engine
    from streams.rules.loader import load_paths
    from streams.rules.ruleset import RuleSet
    from streams.settings import Settings

    pause: Any = contextlib.nullcontext
    if paused:
        from streams.gc_policy import collector_paused

        pause = collector_paused
    settings = Settings()
    apply_gc_policy(settings)
    workload = generate(events)
    records = [RawRecord("bench", i % 4, i, k, v) for i, (k, v) in enumerate(
        zip(workload.keys, workload.values, strict=True))]  # fmt: skip
    rules = RuleSet.build(r.compiled for r in load_paths([root / "rules"]).rules)
    engine = Engine(rules)
    state: dict[bytes, bytes] = {}
    step = settings.batch_max
    started = time.thread_time()
    for start in range(0, len(records), step):
        with pause():
            result = engine.process(records[start : start + step], state.get)
        for key, (_, blob) in result.writes.items():
            if blob is not None:
                state[key] = blob
    return (time.thread_time() - started) / len(records)


def run_in(root: Path, events: int, paused: bool) -> float:
    """:func:`measure` in a fresh interpreter whose ``streams`` is ``root``'s."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from benchmarks.judge_batches import measure; from pathlib import Path; "
        f"print(measure(Path({str(root)!r}), {events}, {paused}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    cases: dict[str, tuple[Path, bool]] = {
        "this tree": (ROOT, False),
        "this tree, collector paused per batch": (ROOT, True),
    }
    if args.tree:
        cases[f"{args.tree}"] = (args.tree.resolve(), False)
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeat):
        for name, (root, paused) in cases.items():
            best[name] = min(best[name], run_in(root, args.events, paused))
    print(f"{args.events} events, best of {args.repeat} interleaved rounds, CPU time")
    for name, seconds in best.items():
        print(f"  {name:45s} {seconds * 1e6:6.1f} µs/event")


if __name__ == "__main__":
    main()
