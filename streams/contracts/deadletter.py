"""``DeadLetter``: why an input record was refused, published on ``crm.events.dlq``."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetter(BaseModel):
    """Why a record was refused.

    On ``crm.events.dlq`` the refused record travels as the message value byte for byte
    (same key), so it can be replayed once fixed; this model is the ``crm-pulse-error``
    header (JSON) and ``crm-pulse-reason`` carries ``reason`` alone.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    reason: str = Field(description="Machine-friendly reason: invalid_json, invalid_event…")
    field: str | None = Field(None, description="Dotted path of the offending field.")
    detail: str = Field(description="Human-readable explanation.")
    topic: str
    partition: int
    offset: int
    adapter: str = "kafka"
    failed_at: AwareDatetime
