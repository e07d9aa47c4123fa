"""The KPI path gives exactly the snapshots it gave before its speed work: two streams of
50,000 simulator events (``tests/unit/kpi_stream.py``) against the digests recorded on
the code before the change (every publication round, every scope's final snapshots, the
counters and the skips)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.kpis.facts import MAX_AMOUNT, MAX_TEXT, is_blank, parse_cents, weighted_cents
from tests.unit.kpi_stream import SPECS, load_reference, run_stream


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return load_reference()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_same_snapshots_as_recorded(spec: Any, reference: dict[str, Any]) -> None:
    expected = reference[spec.name]
    got = run_stream(spec)
    assert got["counters"] == expected["counters"]
    assert got["skips"] == expected["skips"]
    assert got["published"] == expected["published"]
    assert len(got["rounds"]) == len(expected["rounds"])
    for number, (mine, theirs) in enumerate(zip(got["rounds"], expected["rounds"], strict=True)):
        assert mine == theirs, f"publication round {number} differs"
    differing = sorted(s for s in expected["final"] if got["final"].get(s) != expected["final"][s])
    assert not differing and got["final"].keys() == expected["final"].keys(), differing[:10]


def test_the_reference_exercises_what_it_should(reference: dict[str, Any]) -> None:
    """The recorded streams are not trivial: many rounds and snapshots, late events,
    replayed facts, refused facts."""
    span = reference["span"]["counters"]
    assert span["late"] > 0 and span["duplicates"] > 0
    assert span["events_applied"] > 100_000  # facts per scope: owner, team, region, global
    assert sum(r[0] for r in reference["bench"]["rounds"]) > 10_000
    assert len(reference["span"]["rounds"]) >= 40


# The amount arithmetic has a fast path (floats with at most two decimals, integers, an
# exact fraction per probability); the plain Decimal arithmetic it replaces is the
# reference, kept here.


def reference_cents(value: Any) -> tuple[int | None, str | None]:
    if is_blank(value):
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None, "unusable_amount"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return None, "unusable_amount"
    if isinstance(value, int) and not -(10**20) < value < 10**20:
        return None, "unusable_amount"
    try:
        dec = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None, "unusable_amount"
    if not dec.is_finite() or not 0 <= dec <= MAX_AMOUNT:
        return None, "unusable_amount"
    return int((dec * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), None


def reference_weighted(cents: int, probability: float) -> int:
    exact = Decimal(cents) * Decimal(str(probability))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


AMOUNT_EXAMPLES = 3000
AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10.0, 2e12),
    st.integers(-(10**13), 10**13).map(lambda c: c / 100),
    st.integers(-(10**14), 10**14),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
)


@settings(max_examples=AMOUNT_EXAMPLES, deadline=None)
@given(value=AMOUNTS)
def test_cents_are_those_of_decimal_arithmetic(value: Any) -> None:
    assert parse_cents(value) == reference_cents(value)


@settings(max_examples=AMOUNT_EXAMPLES, deadline=None)
@given(
    cents=st.integers(0, 10**14),
    probability=st.one_of(
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.9, 1.0, 1 / 3, 0.125, 2.5e-7]),
        st.floats(-2.0, 2.0),
        st.integers(0, 10**6).map(lambda n: n / 10**6),
    ),
)
def test_weighted_cents_are_those_of_decimal_arithmetic(cents: int, probability: float) -> None:
    assert weighted_cents(cents, probability) == reference_weighted(cents, probability)
