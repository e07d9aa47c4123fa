"""Cost of decoding one input record (``decode_event``), beside baselines of the same run.

On the benchmark's events (``benchmarks/events.py``, about 380 bytes each), it prints CPU
microseconds per event (thread time, best of ``--repeat`` interleaved rounds, so other
processes on the machine weigh less) of:

- ``orjson.loads``: parsing alone, the floor;
- ``ChangeEvent`` alone: the model's validation with its bounds, no pre-checks;
- ``decode_event``: what the engine runs (byte limit, NaN/Infinity, model, time window);
- with ``--before REV``: the ``ChangeEvent`` of a git revision (``git show``), validated
  the way that revision decoded, to compare a contract change against its parent.

Run: ``python benchmarks/decode.py [--events N] [--repeat R] [--before REV]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import timeit
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.events import generate
from streams.contracts.events import ChangeEvent
from streams.decode import RawRecord, decode_event

ROOT = Path(__file__).resolve().parents[1]


def model_at(revision: str) -> Any:
    """The ``ChangeEvent`` class of ``streams/contracts/events.py`` at a git revision."""
    source = subprocess.run(
        ["git", "show", f"{revision}:streams/contracts/events.py"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    module = types.ModuleType(f"events_at_{revision}")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{revision}:streams/contracts/events.py", "exec"), module.__dict__)
    return module.ChangeEvent


def quietly(call: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def run(value: bytes) -> Any:
        try:
            return call(value)
        except Exception as exc:  # invalid records are part of the workload
            return exc

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--before", help="git revision whose ChangeEvent is the 'before'")
    args = parser.parse_args()
    workload = generate(args.events)
    records = [RawRecord("bench", 0, i, k, v) for i, (k, v) in enumerate(
        zip(workload.keys, workload.values, strict=True))]  # fmt: skip
    now = datetime.now(UTC)
    loads, model = quietly(orjson.loads), quietly(ChangeEvent.model_validate_json)
    cases: dict[str, Callable[[], object]] = {
        "orjson.loads (floor)": lambda: [loads(r.value or b"") for r in records],
        "ChangeEvent alone": lambda: [model(r.value or b"") for r in records],
        "decode_event": lambda: [decode_event(r, now) for r in records],
    }
    if args.before:
        old = quietly(model_at(args.before).model_validate_json)
        cases[f"decode at {args.before}"] = lambda: [old(r.value) if r.value else None
                                                     for r in records]  # fmt: skip
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.repeat):
        for name, case in cases.items():
            spent = timeit.Timer(case, timer=time.thread_time).timeit(1)
            best[name] = min(best[name], spent)
    size = sum(len(r.value or b"") for r in records) / len(records)
    print(f"{len(records)} events, {size:.0f} bytes on average, best of {args.repeat} rounds")
    floor = best["orjson.loads (floor)"]
    for name, seconds in best.items():
        per = seconds / len(records) * 1e6
        print(f"  {name:28s} {per:6.2f} µs/event  ({seconds / floor:4.2f}x the floor)")


if __name__ == "__main__":
    main()
