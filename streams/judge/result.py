"""The one batch result of the judge, and the one way a rule error is isolated and counted.

Every path (changes, due timers, KPI points, owner-frequency hits) returns a
:class:`BatchResult`: alerts, derived records (the accepted changes for the KPI feed, the
owner-frequency messages), state writes with their next deadline, dead letters, and counts.
The agents ship it the same way whatever produced it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.contracts.alerts import AlertEvent
from streams.contracts.deadletter import DeadLetter
from streams.decode import RawRecord
from streams.rules.change import Change

log = logging.getLogger("streams.judge")

#: Read-only access to the stored states: key -> encoded state, ``None`` when absent.
StateLookup = Callable[[bytes], bytes | None]


@dataclass
class BatchStats:
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    #: input records at or before the position a record's state applied last (a catch-up).
    replays: int = 0
    #: changes older (``occurred_at``) than the record's last applied change: not merged.
    out_of_order: int = 0
    no_change: int = 0
    #: rule id -> (rule, subject) pairs the rule raised on (isolated: the others went on).
    rule_errors: Counter[str] = field(default_factory=Counter)
    #: (rule, reason): records a rule could not judge (missing or unreadable field).
    skips: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: stage -> records whose processing raised (dead-lettered, or skipped by timers).
    processing_errors: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchResult:
    alerts: list[AlertEvent] = field(default_factory=list)
    dead: list[tuple[RawRecord, DeadLetter]] = field(default_factory=list)
    #: state key -> (partition, encoded state): the last state of each touched subject;
    #: ``None``: the subject leaves the table (a changelog tombstone, see streams.retention).
    writes: dict[bytes, tuple[int, bytes | None]] = field(default_factory=dict)
    #: ChangeEvents accepted in this batch, with the record before/after (KPI feed).
    changes: list[Change] = field(default_factory=list)
    #: ``(owner, message)`` for the owner-keyed frequency topic (owner-scoped frequency).
    derived: list[tuple[str, bytes]] = field(default_factory=list)
    stats: BatchStats = field(default_factory=BatchStats)
    #: state key -> next timer deadline (epoch s) of the written state, ``None``: no timer.
    due: dict[bytes, float | None] = field(default_factory=dict)


class ThrottledLog:
    """Logs a given key at most once per ``every`` seconds (rule errors)."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def should_log(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        self._last[key] = now
        return True


_ERRORS = ThrottledLog()


def rule_failed(
    stats: BatchStats, rid: str, exc: Exception, what: str, errors: ThrottledLog = _ERRORS
) -> None:
    """THE isolation of a rule error: counted once for the rule (``rule_errors``, the
    ``crm_pulse_rule_errors_total`` metric), logged at most once a minute per rule; the
    caller skips that rule on that subject and judges the others."""
    stats.rule_errors[rid] += 1
    if errors.should_log(rid):
        log.warning(
            "rule %s raised on %s (%s: %s); isolated, other rules go on",
            rid, what, type(exc).__name__, exc,
        )  # fmt: skip


def subject_failed(
    stats: BatchStats, stage: str, exc: Exception, what: str, errors: ThrottledLog = _ERRORS
) -> None:
    """A whole subject that could not be judged (unreadable state or snapshot): counted as
    a processing error of ``stage``, logged at most once a minute per stage, skipped."""
    stats.processing_errors[stage] += 1
    if errors.should_log(f"stage:{stage}"):
        log.warning("%s failed on %s (%s: %s); skipped", stage, what, type(exc).__name__, exc)
