"""Calendar slots of a timestamp, in pure arithmetic (no datetime objects on the hot path).

A seasonal profile keeps one learnt offset per slot: ``day_of_week`` (7), ``hour_of_day``
(24) or ``hour_of_week`` (168). ``auto`` picks one from the series' own sampling step.
"""

from __future__ import annotations

#: Profiles and their number of slots.
SLOTS: dict[str, int] = {"none": 1, "day_of_week": 7, "hour_of_day": 24, "hour_of_week": 168}
SEASONS = ("auto", *SLOTS)


def slot_of(period: int, local_ts: float) -> int:
    """Slot of ``local_ts`` (epoch seconds already shifted to local time) for a profile of
    ``period`` slots. Day 0 of the epoch (1970-01-01) was a Thursday: Monday is slot 0."""
    if period == 7:
        return (int(local_ts // 86400.0) + 3) % 7
    if period == 24:
        return int(local_ts // 3600.0) % 24
    if period == 168:
        return (int(local_ts // 3600.0) + 72) % 168
    return 0


def auto_season(median_step_s: float) -> str:
    """The profile that fits a sampling step: hourly points get an hour-of-week profile,
    daily points a day-of-week one; anything else (minutes, weeks, months) none."""
    if 1800.0 <= median_step_s <= 5400.0:
        return "hour_of_week"
    if 72000.0 <= median_step_s <= 108000.0:
        return "day_of_week"
    return "none"


#: Days of the Gregorian 400-year cycle (the calendar repeats after it).
CYCLE = 146097
_month_ends: bytes | None = None


def month_ends() -> bytes:
    """One byte per day of the 400-year cycle: 1 for the last three days of a month."""
    global _month_ends
    if _month_ends is None:
        table = bytearray(CYCLE)
        for day in range(CYCLE):
            y, m, d = civil_from_days(day)
            table[day] = d > _month_days(y, m) - 3
        _month_ends = bytes(table)
    return _month_ends


def month_end(local_ts: float) -> bool:
    """Is the local day one of the last three calendar days of its month? (a table lookup)"""
    return bool(month_ends()[int(local_ts // 86400.0) % CYCLE])


def _month_days(y: int, m: int) -> int:
    if m == 2:
        leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        return 29 if leap else 28
    return 30 if m in (4, 6, 9, 11) else 31


def civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of day ``z`` since 1970-01-01 (H. Hinnant's algorithm)."""
    z += 719468
    era = z // 146097  # floor division: no C-style adjustment for negative days
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d
