"""Injectable time: production uses the wall clock, tests a :class:`ManualClock`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


def when_ingested(timestamp_ms: int | None, default: datetime) -> datetime:
    """The time of an input record: its Kafka timestamp (stored with the record, so the same
    on every read of it), or ``default`` when the record has none (offline runs)."""
    if timestamp_ms is None or timestamp_ms <= 0:
        return default
    return datetime.fromtimestamp(timestamp_ms / 1000.0, tz=UTC)
