"""The open-episode view: what Alertmanager must keep seeing, and what a new alert changes.

Pure and deterministic: ``apply`` takes one ``AlertEvent`` and returns the Alertmanager
alerts to post now. It is rebuilt on start by re-reading ``crm.alerts`` (the durable state,
see docs/notifications.md) and drives the periodic re-post of every open episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus
from streams.notify.alertmanager import Labels, labels_for, postable
from streams.org import OrgDirectory


@dataclass(slots=True)
class Episode:
    alert: AlertEvent
    labels: Labels


@dataclass
class OpenEpisodes:
    org: OrgDirectory
    record_url: str | None = None
    open: dict[str, Episode] = field(default_factory=dict)
    #: Highest sequence seen per alert id (dedup of replays, at-least-once input).
    seen: dict[str, int] = field(default_factory=dict)
    #: Rules whose alerts are point events (one FIRING, never RESOLVED): posted with
    #: ``endsAt = fired_at + point_hold`` and never re-posted.
    point_rules: frozenset[str] = frozenset()
    point_hold: timedelta = timedelta(hours=1)

    def is_duplicate(self, alert: AlertEvent) -> bool:
        return alert.sequence <= self.seen.get(alert.alert_id, 0)

    def apply(self, alert: AlertEvent, now: datetime) -> list[dict[str, Any]]:
        """Update the view with ``alert``; returns the postable alerts (possibly none)."""
        if alert.status is AlertStatus.DIGEST or self.is_duplicate(alert):
            return []
        self.seen[alert.alert_id] = alert.sequence
        previous = self.open.get(alert.alert_id)
        if alert.status is AlertStatus.RESOLVED:
            self.open.pop(alert.alert_id, None)
            self.seen.pop(alert.alert_id, None)  # episode closed: its id never comes back
            if not alert.notify and previous is None:
                return []
            labels = previous.labels if previous else labels_for(alert, self.org)
            # Alertmanager refuses an endsAt that is not after startsAt.
            start = max(alert.fired_at, previous.alert.fired_at if previous else alert.fired_at)
            ends = max(alert.resolved_at or now, start + timedelta(milliseconds=1))
            return [postable(alert, labels, record_url=self.record_url, ends_at=ends)]
        if not alert.notify:
            # Muted (silence, budget): recorded only. Keep what was already shown open.
            return []
        labels = labels_for(alert, self.org)
        if alert.rule_id in self.point_rules and alert.status is AlertStatus.FIRING:
            ends = alert.fired_at + self.point_hold
            return [postable(alert, labels, record_url=self.record_url, ends_at=ends)]
        self.open[alert.alert_id] = Episode(alert, labels)
        posts = []
        if previous is not None and previous.labels != labels:
            # New label set (escalated, reminded): end the old one so it does not linger.
            posts.append(
                postable(previous.alert, previous.labels, record_url=self.record_url, ends_at=now)
            )
        posts.append(postable(alert, labels, record_url=self.record_url))
        return posts

    def repost(self) -> list[dict[str, Any]]:
        """Every open episode, re-posted so Alertmanager does not time it out."""
        return [
            postable(ep.alert, ep.labels, record_url=self.record_url) for ep in self.open.values()
        ]
