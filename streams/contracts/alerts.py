"""``AlertEvent``: the versioned JSON contract of ``crm.alerts``.

Consumers deduplicate on ``(alert_id, sequence)``: the same episode of the same rule on
the same subject always carries the same ``alert_id``; each new status of the episode
increases ``sequence``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1


class AlertStatus(StrEnum):
    FIRING = "FIRING"
    REMINDER = "REMINDER"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"
    #: One summary per owner of the notifications held back by the hourly budget.
    DIGEST = "DIGEST"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Subject(BaseModel):
    """What the alert is about: one CRM record, or one KPI in one scope."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["entity", "kpi", "owner"]
    entity: str | None = Field(None, description="Entity kind, for kind=entity.")
    id: str = Field(description="Record id, or KPI id for kind=kpi.")
    scope: str | None = Field(None, description="KPI scope (global, region:West…).")


class AlertEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: str = Field(description="Stable per rule + subject + episode.")
    status: AlertStatus
    rule_id: str
    rule_version: int
    severity: Severity
    subject: Subject
    owner_id: str | None = None
    escalated_to: str | None = None
    title: str
    message: str = Field(description="Human-readable text, templated by the rule.")
    evidence: dict[str, Any] = Field(default_factory=dict, description="Values that fired it.")
    event_ids: list[str] = Field(default_factory=list, description="Events that caused it.")
    fired_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    sequence: int = Field(1, ge=1, description="Increases with each status of the episode.")
    occurred_at: AwareDatetime | None = Field(None, description="Event time of the cause.")
    reminders: int = Field(0, ge=0, description="Reminders sent so far in this episode.")
    notify: bool = Field(
        True, description="False: recorded only (silenced or over the owner's budget)."
    )
    silenced_by: str | None = Field(None, description="Id of the silence that muted it.")
    held_back: bool = Field(False, description="True: over the owner's notification budget.")
