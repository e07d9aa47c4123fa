"""Shared helpers of the timer rule types (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.business_time import add_business_time
from streams.rules.model import BusinessTime


def deadline(
    start: datetime, duration: timedelta, business: BusinessTime | None, owner_tz: str | None
) -> datetime:
    """``start + duration``, in working time when ``business`` is given."""
    if business is None:
        return start + duration
    tz = owner_tz if business.use_owner_timezone and owner_tz else business.timezone
    return add_business_time(
        start, duration, timezone=tz, days=business.days,
        day_start=business.start, day_end=business.end,
    )  # fmt: skip


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()
