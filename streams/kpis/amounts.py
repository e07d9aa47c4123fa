"""Amounts as KPIs count them: integer cents, rounded half-even, within ``0 .. MAX_AMOUNT``.

The usual amounts (a float with at most two decimals, an integer) and the weighted
pipeline (cents x a catalog probability) are computed in integers when that is exact; the
Decimal arithmetic they stand for is the reference (``tests/unit/test_kpi_equivalence.py``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

#: Largest amount a KPI counts (money units): sums of cents stay exact 64-bit integers
#: for ninety thousand deals at this amount in one scope.
MAX_AMOUNT = Decimal(10**12)
MAX_AMOUNT_INT = 10**12
MAX_AMOUNT_FLOAT = 1e12
#: Longest text read as a number or a date.
MAX_TEXT = 64


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_cents(value: Any) -> tuple[int | None, str | None]:
    """An amount as integer cents (half-even) and why it is unusable: ``(None, None)`` when
    missing, ``(None, "unusable_amount")`` when not a finite number in ``0 .. MAX_AMOUNT``."""
    kind = type(value)
    if kind is float:  # the usual amount: at most two decimals, no rounding to do
        if 0.0 <= value <= MAX_AMOUNT_FLOAT:  # NaN fails this too
            whole, dot, frac = repr(value).partition(".")
            if dot and len(frac) <= 2 and whole.isdigit() and frac.isdigit():
                return int(whole) * 100 + int(frac.ljust(2, "0")), None
    elif kind is int and 0 <= value <= MAX_AMOUNT_INT:
        return value * 100, None
    if is_blank(value):
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None, "unusable_amount"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return None, "unusable_amount"
    if isinstance(value, int) and not -(10**20) < value < 10**20:  # no huge str() of it
        return None, "unusable_amount"
    try:
        dec = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None, "unusable_amount"
    if not dec.is_finite() or not 0 <= dec <= MAX_AMOUNT:
        return None, "unusable_amount"
    return int((dec * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), None


def to_cents(value: Any) -> int | None:
    """An amount as integer cents (half-even), or ``None`` when missing or unusable."""
    return parse_cents(value)[0]


def weighted_cents(cents: int, probability: float) -> int:
    """``cents x probability`` (the probability's decimal text) rounded half-even."""
    exact = _exact_probability(probability)
    if exact is None:
        product = Decimal(cents) * Decimal(str(probability))
        return int(product.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    numerator, denominator = exact
    quotient, rest = divmod(cents * numerator, denominator)  # floor, 0 <= rest < denominator
    if 2 * rest > denominator or (2 * rest == denominator and quotient % 2):
        quotient += 1
    return quotient


#: probability -> its decimal text as an exact fraction, or None (Decimal arithmetic then)
_EXACT: dict[float, tuple[int, int] | None] = {}


def _exact_probability(probability: float) -> tuple[int, int] | None:
    """The probability as ``(numerator, denominator)`` when ``cents x probability`` is
    exact in Decimal's 28 digits (cents have at most 15): integer arithmetic then gives
    the very same result. The probabilities are the catalog's: a handful of values."""
    if probability in _EXACT:
        return _EXACT[probability]
    exact: tuple[int, int] | None = None
    dec = Decimal(str(probability))
    if dec.is_finite() and len(dec.as_tuple().digits) <= 13:
        fraction = Fraction(dec)
        exact = (fraction.numerator, fraction.denominator)
    if len(_EXACT) < 1024:
        _EXACT[probability] = exact
    return exact
