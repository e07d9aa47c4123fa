"""The shape of a KPI fact as :mod:`streams.kpis.store` accepts it: every stored integer
stays exact, every text short, every day in range; anything else is :class:`InvalidFact`."""

from __future__ import annotations

from math import isfinite
from typing import Any

from streams.kpis.windows import MAX_DAY, MIN_DAY, in_range

#: Largest magnitude of a stored sum or delta: integers stay exact in JSON readers that use
#: doubles for every number, and far inside orjson's 64-bit range.
MAX_INT = 2**53
#: Longest stage or owner text kept in a flow fact.
MAX_NAME = 256


class InvalidFact(ValueError):
    """A fact that does not have the shape :mod:`streams.kpis.facts` gives."""


def int_in(value: Any, low: int = -MAX_INT, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidFact(f"not an integer in {low}..{high}")
    return value


def short_text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise InvalidFact("not a short text")
    return value


def usable_day(day: Any) -> bool:
    return isinstance(day, int) and not isinstance(day, bool) and in_range(day)


def check_flow(item: Any) -> list[Any]:
    """A flow item as :mod:`streams.kpis.facts` builds it, or :class:`InvalidFact`."""
    if not isinstance(item, list) or not item:
        raise InvalidFact("flow item is not a list")
    kind = item[0]
    if kind in ("n", "l") and len(item) == 1:
        return item
    if kind == "w" and len(item) == 3:
        if item[1] is not None:
            int_in(item[1], 0)
        if item[2] is not None:
            int_in(item[2], 0, MAX_DAY)
        return item
    if kind == "t" and len(item) == 3:
        short_text(item[1]), short_text(item[2])
        return item
    if kind == "a" and len(item) == 2:
        short_text(item[1])
        return item
    if kind == "r" and len(item) == 2:
        seconds = item[1]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidFact("response time is not a number")
        if not isfinite(seconds) or not 0 <= seconds <= MAX_INT:
            raise InvalidFact("response time out of range")
        return item
    raise InvalidFact(f"unknown flow item {str(kind)[:20]!r}")


def check_deltas(deltas: Any) -> dict[int, dict[str, int]]:
    """State deltas ``{day: {component: delta}}`` with their days as ints, or raises."""
    if type(deltas) is not dict:
        raise InvalidFact("deltas are not an object")
    out: dict[int, dict[str, int]] = {}
    for d, comps in deltas.items():
        try:
            day = int(d)
        except (TypeError, ValueError) as exc:
            raise InvalidFact("delta day is not a number") from exc
        if not MIN_DAY <= day <= MAX_DAY:
            raise InvalidFact("delta day out of range")
        if type(comps) is not dict:
            raise InvalidFact("delta components are not an object")
        for c, v in comps.items():  # inline: this runs for every fact of every scope
            if type(c) is not str or len(c) > MAX_NAME:
                raise InvalidFact("component name is not a short text")
            if type(v) is not int or not -MAX_INT <= v <= MAX_INT:
                raise InvalidFact(f"not an integer in -{MAX_INT}..{MAX_INT}")
        out[day] = comps
    return out
