"""Compare two CEL evaluators from PyPI on the expressions CRM Pulse rules use.

- ``common-expression-language`` (import ``cel``): Rust core with Python bindings.
- ``cel-python`` (import ``celpy``): pure Python (lark parser, tree-walking evaluator).

Correctness: a table of expressions with the result the CEL specification gives (or
``error`` where the spec says evaluation fails, e.g. int * double, missing field).
Speed: compile time per expression and evaluation throughput on the same activations,
measured in the same run, side by side.

Run: ``python benchmarks/cel_compare.py [--evals N]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any

import cel
import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

ERROR = "error"

RECORD = {
    "name": "Acme renewal", "stage": "Negotiation", "amount": 1200.0,
    "close_date": "2026-05-01", "next_step": "", "probability": 60.0, "owner_id": "rep-7",
}  # fmt: skip
OLD = {**RECORD, "amount": 700.0, "stage": "Proposal"}
EVENT = {"op": "update", "date": "2026-03-02", "owner_id": "rep-7"}
ACTIVATION: dict[str, Any] = {"deal": RECORD, "old": OLD, "event": EVENT}

# (expression, activation override or None, expected per the CEL spec)
CASES: list[tuple[str, dict[str, Any] | None, Any]] = [
    ("deal.amount <= 0.0 && deal.stage != 'Lost'", None, False),
    ("deal.amount > old.amount * 1.5", None, True),
    ("deal.stage in ['Negotiation', 'Won'] && deal.next_step == ''", None, True),
    ("has(deal.lost_reason)", None, False),
    ("!has(deal.owner_id) || deal.owner_id == ''", None, False),
    ("deal.close_date < event.date", None, False),
    ("type(deal.amount) == double && deal.amount >= 1000.0", None, True),
    ("deal.probability < 0.0 || deal.probability > 100.0", None, False),
    ("size(deal.name) > 3", None, True),
    ("deal.name.startsWith('Acme')", None, True),
    ("deal.amount == 1200", None, True),  # heterogeneous numeric equality (spec >= 2023)
    ("deal.amount > 1000", None, True),  # heterogeneous numeric ordering
    # what a dirty CRM record does
    ("deal.amount * 2 > 10", None, ERROR),  # double * int: no overload
    ("deal.amount > old.amount * 1.5", {"deal": {"amount": 10}, "old": {"amount": 2}}, ERROR),
    ("deal.missing > 1.0", None, ERROR),  # no such key
    ("deal.amount <= 0.0", {"deal": {"amount": "n/a"}}, ERROR),  # string vs double
    ("deal.amount == null", {"deal": {"amount": None}}, True),
]


class Engine:
    name: str

    def compile(self, source: str) -> Any:
        raise NotImplementedError

    def run(self, program: Any, activation: dict[str, Any]) -> Any:
        raise NotImplementedError

    def prepare(self, activation: dict[str, Any]) -> Any:
        return activation


class RustCel(Engine):
    name = f"common-expression-language {version('common-expression-language')} (cel)"

    def compile(self, source: str) -> Any:
        return cel.compile(source)

    def run(self, program: Any, activation: dict[str, Any]) -> Any:
        return program.execute(activation)


class PyCel(Engine):
    name = f"cel-python {version('cel-python')} (celpy)"

    def __init__(self) -> None:
        self.env = celpy.Environment()

    def compile(self, source: str) -> Any:
        return self.env.program(self.env.compile(source))

    def prepare(self, activation: dict[str, Any]) -> Any:
        return {k: json_to_cel(v) for k, v in activation.items()}

    def run(self, program: Any, activation: dict[str, Any]) -> Any:
        result = program.evaluate(activation)
        if isinstance(result, CELEvalError):
            raise result
        return result


def outcome(engine: Engine, source: str, activation: dict[str, Any]) -> Any:
    try:
        program = engine.compile(source)
        value = engine.run(program, engine.prepare(activation))
    except Exception:
        return ERROR
    if isinstance(value, bool) or type(value).__name__ == "BoolType":
        return bool(value)
    return None if value is None else value


def timed(fn: Callable[[], Any], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evals", type=int, default=20000, help="evaluations per expression")
    args = parser.parse_args()
    engines: list[Engine] = [RustCel(), PyCel()]
    print(f"python {platform.python_version()} on {platform.machine()}")
    print("\n== correctness (expected per the CEL spec) ==")
    for engine in engines:
        wrong = []
        for source, override, expected in CASES:
            got = outcome(engine, source, override or ACTIVATION)
            if got != expected:
                wrong.append(f"   {source!r}: expected {expected!r}, got {got!r}")
        print(f"{engine.name}: {len(CASES) - len(wrong)}/{len(CASES)} as the spec says")
        for line in wrong:
            print(line)

    # timed on the expressions that both evaluate without error
    fast = [
        (s, o) for s, o, e in CASES
        if e != ERROR and all(outcome(g, s, o or ACTIVATION) != ERROR for g in engines)
    ]  # fmt: skip
    print(f"\n== speed: {len(fast)} expressions both evaluate, mean per expression ==")
    print(f"{'engine':<52} {'compile µs':>11} {'eval µs':>9} {'evals/s':>10}")
    for engine in engines:
        compile_us = []
        eval_us = []
        slow = isinstance(engine, PyCel)  # fewer rounds, the same per-call figure
        for source, override in fast:
            rounds = 5 if slow else 50
            compile_us.append(timed(partial(engine.compile, source), rounds) / rounds * 1e6)
            program = engine.compile(source)
            activation = engine.prepare(override or ACTIVATION)
            n = max(1, args.evals // 20) if slow else args.evals
            eval_us.append(timed(partial(engine.run, program, activation), n) / n * 1e6)
        mean_eval = statistics.mean(eval_us)
        print(
            f"{engine.name:<52} {statistics.mean(compile_us):>11.1f} {mean_eval:>9.2f} "
            f"{1e6 / mean_eval:>10,.0f}"
        )
    # the activation conversion celpy needs on every record (cel takes plain dicts)
    py = PyCel()
    conv = timed(lambda: py.prepare(ACTIVATION), 2000) / 2000 * 1e6
    print(f"celpy activation conversion (json_to_cel) per record: {conv:.1f} µs")


if __name__ == "__main__":
    main()
