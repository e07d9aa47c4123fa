"""Event-time windows over UTC calendar days (day numbers since 1970-01-01).

Day numbers of KPI facts are kept inside :data:`MIN_DAY` .. :data:`MAX_DAY` (1970-01-01 to
9999-11-30): every window of such a day, its end and its ISO dates exist, so the window
math cannot meet ``year 10000 is out of range``. Facts outside that range are refused
before they reach a window (:mod:`streams.kpis.facts`, :mod:`streams.kpis.store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

EPOCH = date(1970, 1, 1)
DAY_S = 86400
#: Window kinds with one window per period (the others end at the watermark day).
TUMBLING = ("day", "week", "month")


#: First day a KPI fact may fall on: 1970-01-01, the start of the ``all`` window.
MIN_DAY = 0
#: Last day a KPI fact may fall on (9999-11-30): the month after it still has a start date.
MAX_DAY = (date(9999, 11, 30) - EPOCH).days


def in_range(day: int, last: int = MAX_DAY) -> bool:
    """``day`` is a usable fact day: within ``MIN_DAY .. min(last, MAX_DAY)``."""
    return MIN_DAY <= day <= min(last, MAX_DAY)


def day_of(ts: float) -> int:
    """UTC day number of an epoch-seconds timestamp."""
    return int(ts // DAY_S)


def day_of_date(value: date) -> int:
    return (value - EPOCH).days


def date_of(day: int) -> date:
    return EPOCH + timedelta(days=day)


def dt_of(day: int) -> datetime:
    """Start of a day as an aware UTC datetime; days beyond the calendar are clamped to
    its ends (a window computed from a stored value never raises on its dates)."""
    d = date_of(min(max(day, (date.min - EPOCH).days), (date.max - EPOCH).days))
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """Days ``[start, end)`` of one window of one kind."""

    kind: str
    start: int
    end: int


def week_start(day: int) -> int:
    """ISO week: Monday. 1970-01-01 (day 0) was a Thursday."""
    return day - (day + 3) % 7


def month_start(day: int) -> int:
    d = date_of(day)
    return day_of_date(d.replace(day=1))


def months_back(day: int, months: int) -> int:
    """First day of the month ``months`` calendar months before the month of ``day``
    (never before 1970-01-01)."""
    d = date_of(day)
    index = d.year * 12 + d.month - 1 - months
    if index < 1970 * 12:
        return 0
    return day_of_date(date(index // 12, index % 12 + 1, 1))


def next_month_start(day: int) -> int:
    d = date_of(day)
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return day_of_date(nxt)


def tumbling(kind: str, day: int) -> Window:
    if kind == "day":
        return Window("day", day, day + 1)
    if kind == "week":
        start = week_start(day)
        return Window("week", start, start + 7)
    if kind == "month":
        return Window("month", month_start(day), next_month_start(day))
    raise ValueError(f"not a tumbling window kind: {kind!r}")


def current(kind: str, watermark_day: int) -> Window:
    """The window of ``kind`` that contains the watermark day (rolling ones end with it)."""
    if kind == "rolling7":
        return Window(kind, watermark_day - 6, watermark_day + 1)
    if kind == "rolling30":
        return Window(kind, watermark_day - 29, watermark_day + 1)
    if kind == "all":
        return Window(kind, 0, watermark_day + 1)
    return tumbling(kind, watermark_day)


def tumbling_between(kind: str, first_day: int, last_day: int) -> list[Window]:
    """Every tumbling window of ``kind`` overlapping days ``first_day..last_day``."""
    out: list[Window] = []
    day = first_day
    while day <= last_day:
        w = tumbling(kind, day)
        out.append(w)
        day = w.end
    return out
