"""``DeadLetter``: why an input record was refused, published on ``crm.events.dlq``."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetterReason(StrEnum):
    """The closed list of reasons a record goes to ``crm.events.dlq`` (README, docs/events.md)."""

    INVALID_JSON = "invalid_json"
    INVALID_EVENT = "invalid_event"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    EMPTY_VALUE = "empty_value"
    TOO_LARGE = "too_large"
    OUT_OF_RANGE = "out_of_range"
    PROCESSING_ERROR = "processing_error"


#: One line per reason: what it means. The README and docs/events.md list exactly these.
REASON_MEANINGS: dict[DeadLetterReason, str] = {
    DeadLetterReason.INVALID_JSON: "the value is not JSON (NaN and Infinity are not JSON)",
    DeadLetterReason.INVALID_EVENT: "JSON, but not an object",
    DeadLetterReason.MISSING_FIELD: "a required field is absent; field names it",
    DeadLetterReason.INVALID_FIELD: "a field has the wrong type or format; field names it",
    DeadLetterReason.EMPTY_VALUE: "the record has no value (tombstone or empty bytes)",
    DeadLetterReason.TOO_LARGE: "over a size cap: bytes, nesting depth, members, items or "
    "string length; field names the first offending value",
    DeadLetterReason.OUT_OF_RANGE: "a number or the event time outside its documented range; "
    "field names it",
    DeadLetterReason.PROCESSING_ERROR: "a valid event a later stage failed on; detail names "
    "the stage and the exception type",
}


def _reason_description() -> str:
    lines = (f"{reason.value}: {meaning}" for reason, meaning in REASON_MEANINGS.items())
    return "Why the record was refused (closed list). " + "; ".join(lines) + "."


class DeadLetter(BaseModel):
    """Why a record was refused.

    On ``crm.events.dlq`` the refused record travels as the message value byte for byte
    (same key), so it can be replayed once fixed; this model is the ``crm-pulse-error``
    header (JSON) and ``crm-pulse-reason`` carries ``reason`` alone.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    reason: DeadLetterReason = Field(description=_reason_description())
    field: str | None = Field(None, description="Dotted path of the offending field.")
    detail: str = Field(description="Human-readable explanation.")
    topic: str
    partition: int
    offset: int
    adapter: str = Field(
        "kafka",
        description="Where the record came in: kafka (a topic), or http (an HTTP source: "
        "topic names the endpoint, partition and offset are -1).",
    )
    failed_at: AwareDatetime
    source: str | None = Field(
        None, description="Id of the CRM source that refused the input (sources file)."
    )
    source_reason: str | None = Field(
        None,
        description="The source's own reason (closed list of docs/sources.md: empty_value, "
        "too_large, invalid_json, invalid_payload, unknown_object, unsupported_operation, "
        "missing_id, invalid_event, bad_signature, translator_error); reason is its nearest "
        "dead-letter reason.",
    )
