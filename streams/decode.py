"""Turning raw Kafka records into :class:`ChangeEvent` or a dead letter explaining why not.

Decoding is total: :func:`decode_event` returns an event or a :class:`Refusal` whose reason
is a :class:`~streams.contracts.deadletter.DeadLetterReason`, whatever the bytes. The order
of the checks is the order of their cost: empty, byte size, ``NaN``/``Infinity`` (not JSON,
but accepted by pydantic's parser), the contract (types and the bounds of
:mod:`streams.contracts.limits`), then the event time against the decoding time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from pydantic import ValidationError

from streams.contracts.deadletter import DeadLetter, DeadLetterReason
from streams.contracts.events import ChangeEvent
from streams.contracts.limits import MAX_DEPTH, MAX_EVENT_BYTES

if TYPE_CHECKING:
    from streams.settings import Settings

R = DeadLetterReason
_REASONS = frozenset(R)
#: Default earliest event time (setting ``CRM_PULSE_MIN_EVENT_TIME``).
MIN_EVENT_TIME = datetime(1990, 1, 1, tzinfo=UTC)
#: Default tolerance for event times ahead of the clock (``CRM_PULSE_MAX_EVENT_TIME_SKEW_S``).
MAX_EVENT_TIME_SKEW_S = 86_400.0


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
    reason: DeadLetterReason
    field: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """The configurable bounds of decoding (the fixed ones are in ``contracts.limits``)."""

    max_event_bytes: int = MAX_EVENT_BYTES
    max_event_time_skew_s: float = MAX_EVENT_TIME_SKEW_S
    min_event_time: datetime = MIN_EVENT_TIME

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        return cls(
            max_event_bytes=settings.max_event_bytes,
            max_event_time_skew_s=settings.max_event_time_skew_s,
            min_event_time=settings.min_event_time,
        )


DEFAULT_LIMITS = DecodeLimits()


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def _json_refusal(message: str) -> Refusal:
    if "recursion limit" in message:  # the parser's own depth limit, far beyond ours
        return Refusal(R.TOO_LARGE, None, f"JSON nested deeper than {MAX_DEPTH} levels")
    return Refusal(R.INVALID_JSON, None, f"not valid JSON: {message}")


def refusal_from(exc: ValidationError) -> Refusal:
    """The first error of a validation failure, reduced to a reason and a field path."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return _json_refusal(first["msg"])
    if kind == "model_type" and not first["loc"]:
        return Refusal(R.INVALID_EVENT, None, "the event must be a JSON object")
    ctx = first.get("ctx") or {}
    if kind in _REASONS:  # a bound of the contract: its type is the reason, ctx the path
        return Refusal(R(kind), str(ctx.get("path") or _loc(first["loc"])), first["msg"])
    detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors[:5])
    reason = R.MISSING_FIELD if kind == "missing" else R.INVALID_FIELD
    return Refusal(reason, _loc(first["loc"]), detail[:1000])


def _not_json_number(value: bytes) -> Refusal | None:
    """``NaN`` / ``Infinity`` tokens (pydantic's parser takes them; JSON has no such numbers).

    The byte search is nearly free; only a value containing one of the words (perhaps in a
    string) is parsed again by orjson, which refuses the tokens.
    """
    if not ((b"N" in value and b"NaN" in value) or (b"I" in value and b"Infinity" in value)):
        return None  # one-byte searches first: about twice as fast on typical events
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return _json_refusal(str(exc))
    return None


_window: tuple[datetime, DecodeLimits, float, float] | None = None


def _time_window(now: datetime, limits: DecodeLimits) -> tuple[float, float]:
    """(earliest, latest) accepted epoch seconds; computed once per decoding time (batch)."""
    global _window
    cached = _window
    if cached is not None and cached[0] is now and cached[1] is limits:
        return cached[2], cached[3]
    earliest = limits.min_event_time.timestamp()
    latest = now.timestamp() + limits.max_event_time_skew_s
    _window = (now, limits, earliest, latest)
    return earliest, latest


def check_time(event: ChangeEvent, now: datetime, limits: DecodeLimits) -> Refusal | None:
    """``occurred_at`` within [min_event_time, now + skew], else ``out_of_range``."""
    earliest, latest = _time_window(now, limits)
    try:
        ts = event.epoch
    except (OverflowError, ValueError):  # an offset pushing the time out of years 1-9999
        ts = float("inf") if event.occurred_at.year > 1 else float("-inf")
    if earliest <= ts <= latest:
        return None
    if ts > latest:
        return Refusal(
            R.OUT_OF_RANGE,
            "occurred_at",
            f"occurred_at is more than {limits.max_event_time_skew_s:g} s ahead of the clock "
            f"({now.isoformat()})",
        )
    return Refusal(
        R.OUT_OF_RANGE, "occurred_at", f"occurred_at is before {limits.min_event_time.isoformat()}"
    )


def decode_event(
    raw: RawRecord, now: datetime, limits: DecodeLimits = DEFAULT_LIMITS
) -> ChangeEvent | Refusal:
    """The record's event, or why it is refused. Never raises; ``now`` is the decoding time."""
    value = raw.value
    if not value:
        return Refusal(R.EMPTY_VALUE, None, "the record has no value (tombstone or empty)")
    if len(value) > limits.max_event_bytes:
        return Refusal(
            R.TOO_LARGE,
            None,
            f"the record has {len(value)} bytes (at most {limits.max_event_bytes})",
        )
    refused = _not_json_number(value)
    if refused is not None:
        return refused
    try:
        event = ChangeEvent.model_validate_json(value)
        if len(value) > limits.max_event_bytes // 5:
            refused = _reencoded_too_large(event, limits.max_event_bytes)
    except ValidationError as exc:
        return refusal_from(exc)
    except Exception as exc:  # a defect of the contract code: refused, never raised
        return Refusal(R.PROCESSING_ERROR, None, f"stage decode: {type(exc).__name__}")
    return refused or check_time(event, now, limits) or event


def _reencoded_too_large(event: ChangeEvent, limit: int) -> Refusal | None:
    """Whether the event, written back as JSON (as the state and the outputs do), still fits.

    Writing can only grow numbers (``1E15`` becomes ``1000000000000000.0``: under 4x with
    its separator) and add the absent optional fields (about 60 bytes), so a value under a
    fifth of the limit always fits and is not re-encoded.
    """
    size = len(orjson.dumps(event.model_dump(mode="json")))
    if size <= limit:
        return None
    return Refusal(R.TOO_LARGE, None, f"the event re-encoded has {size} bytes (at most {limit})")


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
