"""Mapping of an ``AlertEvent`` to Alertmanager's v2 ``/api/v2/alerts`` payload (pure).

Alertmanager identifies an alert by its label set. The ``status`` label changes when an
episode is escalated or reminded, so the open-episode view ends the previous label set and
starts the new one (``episodes.OpenEpisodes``); a RESOLVED alert is posted with the label set
of the open episode and ``endsAt``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus
from streams.notify.labels import bound_label
from streams.org import OrgDirectory

SOURCE = "crm-pulse"
Labels = dict[str, str]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def episode_status(alert: AlertEvent) -> str:
    """The ``status`` label: the open state of the episode (a RESOLVED one keeps its last)."""
    if alert.status is AlertStatus.RESOLVED:
        return "escalated" if alert.escalated_to else "firing"
    return alert.status.value.lower()


def labels_for(alert: AlertEvent, org: OrgDirectory) -> Labels:
    person = org.people.get(alert.owner_id or "")
    labels = {
        "alertname": alert.rule_id,
        "severity": alert.severity.value,
        "owner": alert.owner_id,
        "team": person.team if person else None,
        "region": person.region if person else None,
        "status": episode_status(alert),
        "subject_kind": alert.subject.entity or alert.subject.kind,
        "subject_id": alert.subject.id if alert.subject.scope is None
        else f"{alert.subject.id}@{alert.subject.scope}",
        "source": SOURCE,
    }  # fmt: skip
    if alert.escalated_to:
        labels["manager"] = alert.escalated_to
    return {key: bound_label(value) for key, value in labels.items()}


def annotations_for(alert: AlertEvent, record_url: str | None) -> dict[str, str]:
    notes = {
        "title": alert.title,
        "message": alert.message,
        "alert_id": alert.alert_id,
        "sequence": str(alert.sequence),
    }
    if record_url and alert.subject.kind == "entity" and alert.subject.entity:
        notes["record_url"] = record_url.format(entity=alert.subject.entity, id=alert.subject.id)
    return notes


def postable(
    alert: AlertEvent,
    labels: Labels,
    *,
    record_url: str | None = None,
    ends_at: datetime | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations_for(alert, record_url),
        "startsAt": _iso(alert.fired_at),
    }
    if ends_at is not None:
        body["endsAt"] = _iso(ends_at)
    return body
