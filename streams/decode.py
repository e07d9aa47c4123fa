"""Turning raw Kafka records into :class:`ChangeEvent` or a dead letter explaining why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from streams.contracts.deadletter import DeadLetter
from streams.contracts.events import ChangeEvent


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One consumed Kafka record, as bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    field: str | None
    detail: str


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def refusal_from(exc: ValidationError) -> Refusal:
    """The first error of a validation failure, reduced to a reason and a field path."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return Refusal("invalid_json", None, f"not valid JSON: {first['msg']}")
    if first["type"] == "model_type" and not first["loc"]:
        return Refusal("invalid_event", None, "the event must be a JSON object")
    detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors[:5])
    reason = "missing_field" if first["type"] == "missing" else "invalid_field"
    return Refusal(reason, _loc(first["loc"]), detail)


def decode_event(raw: RawRecord) -> ChangeEvent | Refusal:
    if not raw.value:
        return Refusal("empty_value", None, "the record has no value (tombstone or empty)")
    try:
        return ChangeEvent.model_validate_json(raw.value)
    except ValidationError as exc:
        return refusal_from(exc)


def dead_letter(raw: RawRecord, refusal: Refusal, now: datetime) -> DeadLetter:
    return DeadLetter(
        reason=refusal.reason,
        field=refusal.field,
        detail=refusal.detail,
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        failed_at=now,
    )
