"""Per-owner notification budget per time window, and the digest of what was held back (pure).

The budget is an event-sourced counter over ``crm.alerts``: every alert the gate lets
through (``notify: true``) or holds back (``held_back: true``) is published there, and every
worker reads the whole topic (:func:`streams.agents.alerting.feed_loop`). So the counts of a
window are the alerts of that window on the topic, whichever worker sent them:

* :meth:`NotificationBudget.admit` decides for the alerts this worker is about to send and
  records them at once;
* :meth:`NotificationBudget.observe` records the alerts read back from ``crm.alerts`` (its
  own and the other workers'), placed in the window of their Kafka timestamp. After a
  restart, reading the topic from the start rebuilds the current window before the worker
  gates its first alert.

Both record by ``(alert_id, sequence)``: an alert seen twice (read back, replayed after a
crash) counts once, and a replayed alert gets the decision it got the first time.

When a window has ended (plus ``grace_s`` for the other workers' alerts to be read), one
DIGEST alert per owner that had alerts held back is produced by the worker that owns the
owner (``owns``); a DIGEST read on the topic marks the window digested, so a new owner after
a rebalance does not send a second one (its ``alert_id`` is stable anyway).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.judge.episodes import make_alert_id

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
DIGEST_RULE = "crm-pulse.digest"
#: Never held back: closing words, digests, and escalations (they go to the manager).
_NEVER_HELD = frozenset({AlertStatus.RESOLVED, AlertStatus.DIGEST, AlertStatus.ESCALATED})
_NEVER_HELD_NAMES = frozenset(s.value for s in _NEVER_HELD)
#: Held-back alert ids listed in a digest.
MAX_DIGEST_IDS = 100

AlertKey = tuple[str, int]  # (alert_id, sequence)


@dataclass
class _Window:
    owner: str
    start: float
    sent: set[AlertKey] = field(default_factory=set)
    #: held-back alerts in arrival order -> (rule id, severity)
    held: dict[AlertKey, tuple[str, Severity]] = field(default_factory=dict)
    digested: bool = False


class NotificationBudget:
    """At most ``per_hour`` notifications per owner per window of ``window_s`` seconds
    (UTC-aligned; one clock hour by default; 0: unlimited).

    RESOLVED, ESCALATED and DIGEST alerts are never held back; silenced alerts are not
    counted. Held-back alerts are still published (``notify: false, held_back: true``).
    """

    def __init__(self, per_hour: int, window_s: float = 3600.0, grace_s: float = 0.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.per_hour = per_hour
        self.window_s = window_s
        self.grace_s = grace_s
        self._windows: dict[tuple[str, float], _Window] = {}
        self._where: dict[AlertKey, tuple[str, float]] = {}

    def window_of(self, when: datetime) -> float:
        # floor(ts / w) * w: one exact value per window (ts - ts % w can land a hair below
        # the boundary, which would split one window in two keys)
        return math.floor(when.timestamp() / self.window_s) * self.window_s

    def _window(self, owner: str, start: float) -> _Window:
        window = self._windows.get((owner, start))
        if window is None:
            window = self._windows[(owner, start)] = _Window(owner, start)
        return window

    def _decided(self, key: AlertKey) -> bool | None:
        where = self._where.get(key)
        if where is None:
            return None
        window = self._windows.get(where)
        return window is None or key in window.sent

    def admit(self, alert: AlertEvent, now: datetime) -> bool:
        """Whether ``alert`` may be notified now; recorded either way."""
        if self.per_hour <= 0 or alert.owner_id is None or alert.status in _NEVER_HELD:
            return True
        key = (alert.alert_id, alert.sequence)
        known = self._decided(key)
        if known is not None:
            return known  # a replay: the same decision as the first time
        window = self._window(alert.owner_id, self.window_of(now))
        self._where[key] = (window.owner, window.start)
        if len(window.sent) < self.per_hour:
            window.sent.add(key)
            return True
        window.held[key] = (alert.rule_id, alert.severity)
        return False

    def observe(self, alert: Mapping[str, Any], at: datetime, now: datetime | None = None) -> None:
        """Record one alert read from ``crm.alerts`` (``at``: its Kafka timestamp); alerts
        of windows ended more than a window before ``now`` are of no use and skipped."""
        if self.per_hour <= 0:
            return
        if now is not None and self.window_of(at) < self.window_of(now) - self.window_s:
            return
        owner = alert.get("owner_id")
        status = alert.get("status")
        if not isinstance(owner, str) or not owner:
            return
        if status == AlertStatus.DIGEST.value:
            start = _digest_start(alert)
            if start is not None:
                self._window(owner, start).digested = True
            return
        if status in _NEVER_HELD_NAMES or alert.get("silenced_by"):
            return
        try:
            key = (str(alert["alert_id"]), int(alert["sequence"]))
            severity = Severity(alert.get("severity", Severity.WARNING))
        except (KeyError, TypeError, ValueError):
            return
        if key in self._where:
            return  # decided here, or read already
        if alert.get("held_back"):
            window = self._window(owner, self.window_of(at))
            window.held[key] = (str(alert.get("rule_id", "")), severity)
        elif alert.get("notify", True):
            window = self._window(owner, self.window_of(at))
            window.sent.add(key)
        else:
            return
        self._where[key] = (owner, window.start)

    def digests(
        self, now: datetime, owns: Callable[[str], bool] = lambda owner: True
    ) -> list[AlertEvent]:
        """One DIGEST per owned owner whose window ended with alerts held back; windows are
        forgotten one window after they ended."""
        ts = now.timestamp()
        out: list[AlertEvent] = []
        for key, window in list(self._windows.items()):
            end = window.start + self.window_s
            if ts < end + self.grace_s:
                continue
            if ts >= end + self.window_s + self.grace_s:  # too old to be digested now
                del self._windows[key]
                for alert_key in (*window.sent, *window.held):
                    self._where.pop(alert_key, None)
                continue
            if window.held and not window.digested and owns(window.owner):
                window.digested = True
                out.append(self._digest(window))
        return out

    def counts(self, owner: str, now: datetime) -> tuple[int, int]:
        """(notified, held back) for ``owner`` in the window of ``now``."""
        window = self._windows.get((owner, self.window_of(now)))
        return (0, 0) if window is None else (len(window.sent), len(window.held))

    def _digest(self, window: _Window) -> AlertEvent:
        by_rule = Counter(rule for rule, _ in window.held.values())
        severity = max((s for _, s in window.held.values()), key=_RANK.__getitem__)
        total = len(window.held)
        start = datetime.fromtimestamp(window.start, tz=UTC)
        end = start + timedelta(seconds=self.window_s)
        listed = ", ".join(f"{rule} x{n}" for rule, n in sorted(by_rule.items()))
        owner = window.owner
        return AlertEvent(
            alert_id=make_alert_id(DIGEST_RULE, owner, start.isoformat()),
            status=AlertStatus.DIGEST, rule_id=DIGEST_RULE, rule_version=1,
            severity=severity, subject=Subject(kind="owner", id=owner), owner_id=owner,
            title=f"{total} alert(s) held back for {owner}",
            message=f"{total} notification(s) over the budget between "
                    f"{start:%H:%M} and {end:%H:%M} UTC: {listed}.",
            evidence={"held": total, "by_rule": dict(sorted(by_rule.items())),
                      "alert_ids": [k[0] for k in window.held][:MAX_DIGEST_IDS],
                      "window_start": start.isoformat(), "window_end": end.isoformat()},
            fired_at=end, sequence=1,
        )  # fmt: skip


def _digest_start(alert: Mapping[str, Any]) -> float | None:
    evidence = alert.get("evidence")
    raw = evidence.get("window_start") if isinstance(evidence, Mapping) else None
    try:
        return datetime.fromisoformat(str(raw)).timestamp() if raw else None
    except ValueError:
        return None
