"""Durations in working time: add N working hours to an instant in a given timezone (pure)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_MAX_DAYS = 3660  # ten years of calendar days: a guard against impossible schedules


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def add_business_time(
    start: datetime,
    duration: timedelta,
    *,
    timezone: str = "UTC",
    days: tuple[int, ...] | list[int] = (1, 2, 3, 4, 5),
    day_start: str = "09:00",
    day_end: str = "18:00",
) -> datetime:
    """``start`` plus ``duration`` counted only on ``days`` (ISO weekdays) between
    ``day_start`` and ``day_end`` local time in ``timezone``. Returns an aware datetime in
    the timezone of ``start``. A start outside working hours counts from the next opening.
    """
    tz = ZoneInfo(timezone)
    opens, closes = _hm(day_start), _hm(day_end)
    if closes <= opens:
        raise ValueError(f"day_end {day_end} must be after day_start {day_start}")
    local = start.astimezone(tz)
    remaining = duration
    day = local.date()
    for _ in range(_MAX_DAYS):
        if day.isoweekday() in days:
            open_at = datetime.combine(day, opens, tz)
            close_at = datetime.combine(day, closes, tz)
            begin = max(local, open_at)
            if begin < close_at:
                available = close_at - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
        day += timedelta(days=1)
    raise ValueError("no working time found within ten years; check the schedule")
