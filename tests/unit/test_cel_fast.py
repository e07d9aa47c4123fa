"""The compiled CEL subset against the ``cel`` library, the reference.

Every starter-pack expression and a few thousand generated ones are evaluated by both over
generated records (the shape rules see: numbers are doubles, see ``as_cel``); the outcome
must agree: the same value, or ``KeyError`` (a missing field), or another error.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml

from streams.rules.cel_expr import compile_cel
from streams.rules.cel_fast import Unsupported, compile_fast

REPO = Path(__file__).resolve().parents[2]

FIELDS = ("stage", "amount", "owner_id", "close_date", "probability", "tags", "name")
VALUES: tuple[Any, ...] = (
    0.0, 1.0, -2.5, 100000.0, 150.0, "Won", "Lost", "Negotiation", "", "2026-03-02",
    "Prospecting", None, True, False, ["a", "b"], [], {"x": 1.0}, 3.0,
)  # fmt: skip
LITERALS = (
    "0.0", "1.0", "100.0", "5", "0", "-1", "2.5", '"Won"', '"Lost"', '""', '"2026-03-01"',
    "null", "true", "false", '["Won", "Lost"]', "[1.0, 2.0]", "[1, 2]", "[]", '"a"',
)  # fmt: skip
TYPE_NAMES = ("double", "int", "string", "bool", "null_type", "list", "map")


def outcome(run: Any) -> tuple[str, Any]:
    try:
        value = run()
    except KeyError:
        return ("missing", None)
    except Exception:
        return ("error", None)
    if isinstance(value, float) and value != value:
        return ("value", "nan")
    if isinstance(value, bool) or value is None or isinstance(value, str | int | float | list):
        return ("value", value)
    return ("value", repr(value))


def agree(source: str, activation: dict[str, Any]) -> None:
    reference = cel.compile(source)
    fast = compile_fast(source)
    want = outcome(lambda: reference.execute(cel.Context(activation)))
    got = outcome(lambda: fast.fn(activation))
    numbers = want[0] == got[0] == "value" and not isinstance(want[1], bool | str)
    if numbers and (want[1] == got[1] or repr(want[1]) == repr(got[1])):
        return
    assert got == want, f"{source!r} over {activation!r}: compiled {got}, library {want}"


def record(rng: random.Random) -> dict[str, Any]:
    return {f: rng.choice(VALUES) for f in FIELDS if rng.random() < 0.7}


def activation(rng: random.Random) -> dict[str, Any]:
    deal = record(rng)
    return {
        "deal": deal,
        "record": deal,
        "old": record(rng) if rng.random() < 0.8 else {},
        "event": {"op": rng.choice(("create", "update")), "date": "2026-03-02", "owner_id": ""},
        "changed": sorted(deal)[:2],
    }


def operand(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if roll < 0.45:
        return f"{rng.choice(('deal', 'old', 'record'))}.{rng.choice(FIELDS)}"
    if roll < 0.75 or depth <= 0:
        return rng.choice(LITERALS)
    if roll < 0.85:
        return f"{operand(rng, depth - 1)} {rng.choice('+-*/%')} {operand(rng, depth - 1)}"
    if roll < 0.9:
        return f"size({operand(rng, depth - 1)})"
    if roll < 0.95:
        return f"-{operand(rng, depth - 1)}"
    return f"({boolean(rng, depth - 1)} ? {operand(rng, 0)} : {operand(rng, 0)})"


def boolean(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth > 0 and roll < 0.25:
        return f"{boolean(rng, depth - 1)} {rng.choice(('&&', '||'))} {boolean(rng, depth - 1)}"
    if depth > 0 and roll < 0.32:
        return f"!({boolean(rng, depth - 1)})"
    if roll < 0.42:
        return f"has({rng.choice(('deal', 'old'))}.{rng.choice(FIELDS)})"
    if roll < 0.52:
        return f"type({operand(rng, 1)}) == {rng.choice(TYPE_NAMES)}"
    if roll < 0.58:
        return f'{operand(rng, 0)}.{rng.choice(("startsWith", "endsWith", "contains"))}("N")'
    if roll < 0.62:
        return rng.choice(("true", "false", "deal.stage", "changed == []"))
    op = rng.choice(("<", "<=", ">", ">=", "==", "!=", "in", "==", "!="))
    return f"{operand(rng, depth - 1)} {op} {operand(rng, depth - 1)}"


def starter_expressions() -> list[str]:
    found = []
    for path in sorted((REPO / "rules").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for rule in (doc or {}).get("rules", []):
                for key in ("condition", "resolve_when"):
                    if rule.get(key):
                        found.append(rule[key])
    return found


def test_every_starter_pack_expression_compiles_and_agrees() -> None:
    expressions = starter_expressions()
    assert len(expressions) >= 10
    rng = random.Random(1)
    for source in expressions:
        compile_fast(source)  # the whole starter pack is in the compiled subset
        for _ in range(300):
            agree(source, activation(rng))


def test_generated_expressions_agree_with_the_library() -> None:
    rng = random.Random(7)
    checked = 0
    for _ in range(4000):
        source = boolean(rng, 3)
        try:
            compile_cel(source)
        except ValueError:
            continue  # not CEL (e.g. a generated reserved word): nothing to compare
        for _ in range(5):
            agree(source, activation(rng))
        checked += 1
    assert checked > 3000


@pytest.mark.parametrize(
    "source",
    ['deal.stage.matches("^W")', "{'a': 1}.a == 1", "string(deal.amount) == '1'",
     "deal.tags.exists(t, t == 'a')", "timestamp(deal.close_date) > now"],
)  # fmt: skip
def test_beyond_the_subset_is_refused_so_the_library_runs_it(source: str) -> None:
    with pytest.raises(Unsupported):
        compile_fast(source)


def test_reads_name_the_record_fields() -> None:
    fast = compile_fast('deal.stage == "Won" && !has(deal.amount) || old.stage in ["Lost"]')
    assert fast.reads == {("deal", "stage"), ("deal", "amount"), ("old", "stage")}
    assert ("deal", "*") in compile_fast("size(deal) > 2.0").reads
