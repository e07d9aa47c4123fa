"""A feed's arrival rhythm in working time, and when its silence stops being normal (pure).

A KPI series whose snapshots come every few minutes during the working day and never at
night is silent at 03:00 for a good reason and at 11:00 for a bad one: gaps are measured
in *working* seconds of the org's calendar (:mod:`streams.business_time`), so nights,
weekends and closed days never count.

:class:`FeedRhythm` learns the usual gap online, robustly, in O(1): an exponentially
weighted mean ``m`` and mean absolute deviation ``s`` of ``log(gap)`` (gaps are log-normal
rather than normal). The allowed silence is ``factor x exp(m + 2.5 s)``, bounded by
``min_gap`` and ``max_gap``; a gap longer than the allowed silence is an outage, not learnt.
:func:`feed_trust` is the trust of the KPI fed by that feed after ``silent`` working seconds:
1 up to the usual gap, down to :data:`TRUST_AT_DEADLINE` (below the default trust floor,
0.5) at the allowed silence, then ``TRUST_AT_DEADLINE x allowed / silent``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from streams.business_time import add_business_time

#: Trust of a KPI whose feed has been silent exactly as long as allowed.
TRUST_AT_DEADLINE = 0.4
#: Weight of a new gap in the learnt rhythm.
RATE = 0.1
#: Shortest gap learnt (working seconds): bursts of snapshots in one publish round.
MIN_LEARNT_GAP = 1.0
#: Longest span walked day by day when counting working time (beyond: whole weeks).
_WALK_DAYS = 400


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working days (ISO weekdays) and hours in one timezone."""

    timezone: str = "UTC"
    days: tuple[int, ...] = (1, 2, 3, 4, 5)
    start: str = "09:00"
    end: str = "18:00"

    def hours(self) -> tuple[time, time]:
        return _hm(self.start), _hm(self.end)


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def working_seconds(start: datetime, end: datetime, calendar: Calendar) -> float:
    """Working seconds of ``calendar`` between two aware instants (0 if ``end <= start``)."""
    if end <= start:
        return 0.0
    tz = ZoneInfo(calendar.timezone)
    opens, closes = calendar.hours()
    if closes <= opens:
        raise ValueError(f"day end {calendar.end} must be after day start {calendar.start}")
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day, last = local_start.date(), local_end.date()
    total = 0.0
    span = (last - day).days
    if span > _WALK_DAYS:  # whole weeks in one step: same answer, bounded work
        weeks = (span - 7) // 7
        per_week = (
            len(calendar.days)
            * (datetime.combine(day, closes) - datetime.combine(day, opens)).total_seconds()
        )
        total += weeks * per_week
        day += timedelta(days=7 * weeks)
        local_start = datetime.combine(day, time(0), tz)
    while day <= last:
        if day.isoweekday() in calendar.days:
            begin = max(local_start, datetime.combine(day, opens, tz))
            finish = min(local_end, datetime.combine(day, closes, tz))
            if finish > begin:
                total += (finish - begin).total_seconds()
        day += timedelta(days=1)
    return total


def add_working(start: datetime, seconds: float, calendar: Calendar) -> datetime:
    """``start`` plus ``seconds`` of working time (see :mod:`streams.business_time`)."""
    return add_business_time(
        start, timedelta(seconds=seconds), timezone=calendar.timezone, days=calendar.days,
        day_start=calendar.start, day_end=calendar.end,
    )  # fmt: skip


@dataclass(slots=True)
class FeedRhythm:
    n: int = 0
    mean_log: float = 0.0
    dev_log: float = 0.0
    last: float | None = None  # epoch seconds of the last arrival

    def usual_gap(self) -> float:
        """The typical gap (working seconds): ``exp(m)``, the geometric mean."""
        return math.exp(self.mean_log) if self.n > 1 else 0.0

    def allowed(self, factor: float, min_gap: float, max_gap: float | None) -> float:
        """Working seconds of silence still normal."""
        base = math.exp(self.mean_log + 2.5 * self.dev_log) if self.n > 1 else min_gap
        allowed = max(factor * base, min_gap)
        return min(allowed, max_gap) if max_gap is not None else allowed

    def observe(self, at: float, gap: float | None, allowed: float | None) -> None:
        """An arrival at epoch ``at``, ``gap`` working seconds after the previous one.
        A gap longer than ``allowed`` (an outage) moves nothing but the last arrival."""
        self.last = at
        if gap is None:
            self.n = max(self.n, 1)
            return
        if allowed is not None and gap > allowed:
            return
        x = math.log(max(gap, MIN_LEARNT_GAP))
        self.n += 1
        if self.n == 2:
            self.mean_log, self.dev_log = x, 0.0
            return
        rate = max(RATE, 1.0 / (self.n - 1))
        self.dev_log += rate * (abs(x - self.mean_log) - self.dev_log)
        self.mean_log += rate * (x - self.mean_log)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "m": self.mean_log, "d": self.dev_log, "t": self.last}

    @classmethod
    def from_dict(cls, data: Any) -> FeedRhythm:
        if not isinstance(data, dict):
            return cls()
        last = data.get("t")
        return cls(int(data.get("n", 0)), float(data.get("m", 0.0)), float(data.get("d", 0.0)),
                   float(last) if last is not None else None)  # fmt: skip


def feed_trust(silent: float, usual: float, allowed: float) -> float:
    """Trust in [0, 1] of a KPI whose feed has been silent ``silent`` working seconds."""
    if silent <= usual or allowed <= 0.0:
        return 1.0
    if silent <= allowed:
        span = max(allowed - usual, 1e-9)
        return 1.0 - (1.0 - TRUST_AT_DEADLINE) * (silent - usual) / span
    return TRUST_AT_DEADLINE * allowed / silent
