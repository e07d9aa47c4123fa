"""Small, shared helpers to read dirty CRM values (pure); making a record friendly to CEL
is :func:`streams.rules.cel_values.as_cel`."""

from __future__ import annotations

import math
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
