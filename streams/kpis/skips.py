"""What the KPI stages could not use, counted per stage and reason (never raised).

Every KPI stage is total over its input: a fact, a value or a scope that breaks it is
skipped and noted here; the agent moves the counts to the ``crm_pulse_kpi_skipped``
counter and logs them at most once per interval (a hostile backlog would otherwise
write one line per record).

Stages and reasons (a closed list, documented in docs/kpis.md):

- ``extract``: ``out_of_range`` (event time outside 1970-01-01 .. now + future skew: the
  event's facts are not counted), ``unusable_amount`` / ``unusable_date`` (a value that is
  not a number / date in range: counted as missing), ``unusable_owner`` (an owner id that
  is not a short text or number: counted as unassigned), ``processing_error``;
- ``apply``: ``out_of_range``, ``invalid_fact`` (a facts message or fact of the wrong
  shape), ``overflow`` (a sum would leave the exact integer range);
- ``publish``: ``processing_error`` (a scope whose snapshots could not be computed this
  round; the others are published).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

STAGES = ("extract", "apply", "publish")
REASONS = (
    "out_of_range",
    "unusable_amount",
    "unusable_date",
    "unusable_owner",
    "invalid_fact",
    "overflow",
    "processing_error",
)


@dataclass
class Skips:
    """Counts of skipped items per ``(stage, reason)`` with the latest detail of each."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    details: dict[tuple[str, str], str] = field(default_factory=dict)

    def note(self, stage: str, reason: str, detail: str = "", n: int = 1) -> None:
        self.counts[(stage, reason)] += n
        if detail:
            self.details[(stage, reason)] = detail[:200]

    def drain(self) -> list[tuple[str, str, int, str]]:
        """``(stage, reason, count, latest detail)`` noted since the last drain."""
        out = [(s, r, n, self.details.get((s, r), "")) for (s, r), n in self.counts.items()]
        self.counts.clear()
        self.details.clear()
        return out


@dataclass
class ThrottledLog:
    """Logs skip counts at most once per ``interval_s``; counts in between are summed."""

    logger: logging.Logger
    interval_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _pending: Counter[tuple[str, str]] = field(default_factory=Counter)
    _details: dict[tuple[str, str], str] = field(default_factory=dict)
    _last: float | None = None

    def add(self, stage: str, reason: str, n: int, detail: str) -> None:
        self._pending[(stage, reason)] += n
        if detail:
            self._details[(stage, reason)] = detail

    def flush(self, force: bool = False) -> bool:
        """Write one line if anything is pending and the interval has passed."""
        now = self.clock()
        if not self._pending or (
            not force and self._last is not None and now - self._last < self.interval_s
        ):
            return False
        self._last = now
        parts = [
            f"{stage}/{reason}: {n}" + (f" ({self._details[(stage, reason)]})"
                                        if (stage, reason) in self._details else "")
            for (stage, reason), n in sorted(self._pending.items())
        ]  # fmt: skip
        # dirty CRM data (a text amount, an unknown stage) is routine and already counted
        # and alerted on: INFO; a stage that failed on a value is a WARNING
        failed = any(reason == "processing_error" for _, reason in self._pending)
        level = logging.WARNING if failed else logging.INFO
        self.logger.log(level, "KPI inputs skipped (counted, not applied): %s", "; ".join(parts))
        self._pending.clear()
        self._details.clear()
        return True
