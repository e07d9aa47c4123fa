"""Per-owner notification budget per clock hour, and the digest of what was held back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.lifecycle import make_alert_id

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
DIGEST_RULE = "crm-pulse.digest"
#: Never held back: closing words, digests, and escalations (they go to the manager).
_NEVER_HELD = frozenset({AlertStatus.RESOLVED, AlertStatus.DIGEST, AlertStatus.ESCALATED})


@dataclass
class _Hour:
    start: datetime
    sent: int = 0
    held: Counter[str] = field(default_factory=Counter)
    held_ids: list[str] = field(default_factory=list)
    severity: Severity = Severity.INFO


def hour_of(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class NotificationBudget:
    """At most ``per_hour`` notifications per owner per clock hour (0: unlimited).

    RESOLVED alerts are never held back (they close what was said). Held-back alerts are
    still published (``notify: false, held_back: true``); when the hour ends, one DIGEST
    alert per owner summarises them.
    """

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._hours: dict[str, _Hour] = {}
        self._pending: list[tuple[str, _Hour]] = []

    def admit(self, alert: AlertEvent, now: datetime) -> bool:
        if self.per_hour <= 0 or alert.owner_id is None or alert.status in _NEVER_HELD:
            return True
        start = hour_of(now)
        hour = self._hours.get(alert.owner_id)
        if hour is None or hour.start != start:
            if hour is not None and hour.held:
                return self._carry(alert, hour, start)
            hour = self._hours[alert.owner_id] = _Hour(start)
        if hour.sent < self.per_hour:
            hour.sent += 1
            return True
        hour.held[alert.rule_id] += 1
        hour.held_ids.append(alert.alert_id)
        if _RANK[alert.severity] > _RANK[hour.severity]:
            hour.severity = alert.severity
        return False

    def _carry(self, alert: AlertEvent, hour: _Hour, start: datetime) -> bool:
        # the previous hour still waits for its digest: keep it, count this one afresh
        self._pending.append((alert.owner_id or "", hour))
        self._hours[alert.owner_id or ""] = _Hour(start, sent=1)
        return True

    def digests(self, now: datetime) -> list[AlertEvent]:
        """One DIGEST per owner whose hour ended with held-back notifications."""
        start = hour_of(now)
        ended = list(self._pending)
        self._pending.clear()
        for owner, hour in list(self._hours.items()):
            if hour.start < start:
                del self._hours[owner]
                if hour.held:
                    ended.append((owner, hour))
        return [self._digest(owner, hour) for owner, hour in ended]

    @staticmethod
    def _digest(owner: str, hour: _Hour) -> AlertEvent:
        total = sum(hour.held.values())
        end = hour.start + timedelta(hours=1)
        by_rule = ", ".join(f"{rule} x{n}" for rule, n in sorted(hour.held.items()))
        return AlertEvent(
            alert_id=make_alert_id(DIGEST_RULE, owner, hour.start.isoformat()),
            status=AlertStatus.DIGEST, rule_id=DIGEST_RULE, rule_version=1,
            severity=hour.severity, subject=Subject(kind="owner", id=owner), owner_id=owner,
            title=f"{total} alert(s) held back for {owner}",
            message=f"{total} notification(s) over the hourly budget between "
                    f"{hour.start:%H:%M} and {end:%H:%M} UTC: {by_rule}.",
            evidence={"held": total, "by_rule": dict(hour.held),
                      "alert_ids": hour.held_ids[:100], "window_start": hour.start.isoformat(),
                      "window_end": end.isoformat()},
            fired_at=end, sequence=1,
        )  # fmt: skip
