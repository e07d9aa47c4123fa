"""``ChangeEvent``: one change of one CRM record, the input contract of ``crm.events``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EntityKind(StrEnum):
    DEAL = "deal"
    LEAD = "lead"
    ACCOUNT = "account"
    CONTACT = "contact"
    ACTIVITY = "activity"
    TASK = "task"


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class ChangeEvent(BaseModel):
    """A change to one CRM record, keyed on Kafka by ``entity_id``.

    ``fields`` holds the record after the change, or only the changed fields; the engine
    merges it over the record's last known state. ``changed`` names the changed fields
    when the source tells (otherwise the engine diffs against the last known state).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=200, description="Idempotency key.")
    source: str = Field(min_length=1, max_length=100, description="Adapter or system name.")
    entity: EntityKind = Field(description="Kind of record changed.")
    entity_id: str = Field(min_length=1, max_length=200, description="Record id in the CRM.")
    op: Op = Field(description="create, update or delete.")
    occurred_at: AwareDatetime = Field(description="Event time (timezone-aware ISO 8601).")
    actor: str | None = Field(None, max_length=200, description="Who made the change.")
    owner_id: str | None = Field(None, max_length=200, description="Record owner (sales rep).")
    fields: dict[str, Any] = Field(default_factory=dict, description="Record fields.")
    changed: list[str] | None = Field(None, description="Names of the changed fields.")
