"""``Silence``: a time-bounded mute, the contract of the compacted ``crm.silences`` topic.

Key: the silence id; value: this JSON, or a tombstone (null) to lift it early. A silence
matches an alert when every matcher it sets matches (rule, owner, team, subject id).
"""

from __future__ import annotations

from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class Silence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="Stable silence id.")
    rule_id: str | None = Field(None, description="Mute this rule.")
    owner_id: str | None = Field(None, description="Mute alerts of this owner.")
    team: str | None = Field(None, description="Mute alerts of owners in this team (org).")
    subject_id: str | None = Field(None, description="Mute alerts about this record or KPI.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str | None = Field(None, max_length=200)
    comment: str = Field("", max_length=1000)

    @model_validator(mode="after")
    def _bounded_and_targeted(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if not any((self.rule_id, self.owner_id, self.team, self.subject_id)):
            raise ValueError("a silence needs at least one of rule_id, owner_id, team, subject_id")
        return self
