"""Small, shared helpers to read dirty CRM values (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def is_blank(value: Any) -> bool:
    """``None``, empty or whitespace-only strings, empty containers."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict | tuple | set):
        return len(value) == 0
    return False


def as_number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; ``None`` when it is not one
    (``"nan"``, ``"inf"``, an integer beyond the float range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and len(value) <= 100:
        try:
            number = float(value.replace(",", "").strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_date(value: Any) -> date | None:
    """A date from an ISO date/datetime string (or date object); ``None`` otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


_FLAT = frozenset({str, float, bool, type(None)})


def _double(value: int) -> float:
    """An int as a double; one beyond the double range is +/- infinity (never raises)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def as_cel(value: Any) -> Any:
    """A JSON value made friendly to CEL: every number (not bool) becomes a double.

    CEL never mixes int and double in arithmetic; CRM sources send ``1200`` and ``1200.0``
    for the same field. With doubles everywhere, rule authors compare and multiply record
    values freely (literals in arithmetic are then written ``1.5``, ``10.0``).
    """
    kind = value.__class__
    if kind is dict:  # a record: one pass, recursing only into nested containers
        return {
            str(k): _double(v) if v.__class__ is int else v if v.__class__ in _FLAT else as_cel(v)
            for k, v in value.items()
        }
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return _double(value)
    if isinstance(value, Mapping):
        return {str(k): as_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_cel(v) for v in value]
    return value
