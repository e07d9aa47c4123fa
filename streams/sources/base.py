"""What every source type shares: the result of a translation and how events are built.

A source turns what a CRM emits (a Debezium change record, a Salesforce change event, a
HubSpot webhook batch, any JSON through a declarative mapping) into ``ChangeEvent``s. The
translation is pure and total: it never raises, whatever the bytes.

API (the transports build on it)::

    class SourceType(StrEnum): debezium, salesforce_cdc, hubspot_webhook, mapping
    class SourceRefusalReason(StrEnum): closed list, documented in docs/sources.md
    Refusal(reason: SourceRefusalReason, detail: str, raw: bytes)
        .dead_letter_reason -> DeadLetterReason   (the reason of the crm.events.dlq header)
        .as_json() -> {"reason": ..., "detail": ...}
    Gap(source_id, entity: EntityKind | None, entity_ids: tuple[str, ...], change_type,
        detail, crm_object, event_id, occurred_at)   (state unknown until a re-sync)
    Translation(events: list[ChangeEvent], refusals: list[Refusal], gaps: list[Gap],
                skipped: int)
    class Translator(Protocol):
        source_id: str
        def translate(self, raw: bytes | None, *, received_at: datetime) -> Translation

    streams.sources.config:
        load_sources(path: Path) -> SourcesConfig          (SourceConfigError.problems:
        parse_sources(text, name, base) -> SourcesConfig    file:line: source 'id' field 'x': …)
        SourcesConfig.sources / .get(id) / .ids; SourceConfig = DebeziumSource |
        SalesforceCdcSource | HubspotWebhookSource | MappingSource (``.transport``:
        TopicTransport(topics) | HttpTransport(secret: SecretRef, public_url,
        signature_header, max_age_s); ``SecretRef.read() -> SecretStr``)
    streams.sources.registry:
        build_translator(source: SourceConfig, limits: DecodeLimits = ...) -> Translator
    streams.sources.signatures:
        verify_hubspot_signature_v3(secret: SecretStr, method, uri, body: bytes,
            timestamp: str | None, signature: str | None, now: datetime,
            max_age_s=300.0) -> bool
        verify_hmac_sha256(secret: SecretStr, body: bytes, signature: str | None) -> bool
    streams.sources.fieldmap:
        record_url(config, source_id, entity, entity_id, crm_object=None) -> str | None

``raw`` is ``None`` for a Kafka tombstone. A refusal carries the bytes to write to the
dead-letter topic: the whole input when the whole input is refused, or the one item of a
batch (a HubSpot webhook batch, a mapping source's list) re-encoded as JSON when only that
item is refused. Every event built here has gone through the engine's own decoder
(:func:`streams.decode.decode_event`), so the worker accepts exactly what a translator
returns; an event the contract refuses becomes a refusal ``invalid_event``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson

from streams.contracts.deadletter import DeadLetterReason
from streams.contracts.events import ChangeEvent, EntityKind, Op
from streams.decode import DEFAULT_LIMITS, DecodeLimits, RawRecord, decode_event
from streams.decode import Refusal as DecodeRefusal


class SourceType(StrEnum):
    """The closed registry of source types (one module each)."""

    DEBEZIUM = "debezium"
    SALESFORCE_CDC = "salesforce_cdc"
    HUBSPOT_WEBHOOK = "hubspot_webhook"
    MAPPING = "mapping"


class SourceRefusalReason(StrEnum):
    """Why a source could not translate an input (closed list; docs/sources.md lists it)."""

    #: empty bytes (a Debezium tombstone is skipped, not refused).
    EMPTY_VALUE = "empty_value"
    #: over the source's byte cap (CRM_PULSE_MAX_EVENT_BYTES of one item, 16x for a batch).
    TOO_LARGE = "too_large"
    #: not UTF-8 JSON (NaN and Infinity are not JSON).
    INVALID_JSON = "invalid_json"
    #: JSON, but not the shape this source type sends (a missing header, a wrong type).
    INVALID_PAYLOAD = "invalid_payload"
    #: a CRM object or table the source's mapping does not declare.
    UNKNOWN_OBJECT = "unknown_object"
    #: an operation the source type does not translate (Debezium truncate or message,
    #: an unknown Salesforce changeType or HubSpot subscriptionType).
    UNSUPPORTED_OPERATION = "unsupported_operation"
    #: the record id (or the event time) cannot be found where the mapping says.
    MISSING_ID = "missing_id"
    #: the translated event breaks the ChangeEvent contract (bounds, event time).
    INVALID_EVENT = "invalid_event"
    #: HTTP sources only: bad, missing or stale signature (answered 401, never read).
    BAD_SIGNATURE = "bad_signature"
    #: the translator failed unexpectedly (a defect); detail names the exception type.
    TRANSLATOR_ERROR = "translator_error"


#: One line per reason, what it means: docs/sources.md lists exactly these.
REASON_MEANINGS: dict[SourceRefusalReason, str] = {
    SourceRefusalReason.EMPTY_VALUE: "the input has no bytes (a Debezium tombstone is "
    "skipped, not refused)",
    SourceRefusalReason.TOO_LARGE: "the input is over the source's byte cap",
    SourceRefusalReason.INVALID_JSON: "not UTF-8 JSON (NaN and Infinity are not JSON)",
    SourceRefusalReason.INVALID_PAYLOAD: "JSON, but not the shape this source type sends "
    "(a missing header, a value of the wrong type)",
    SourceRefusalReason.UNKNOWN_OBJECT: "a CRM object or table that the source's mapping "
    "does not declare",
    SourceRefusalReason.UNSUPPORTED_OPERATION: "an operation the source type does not "
    "translate (Debezium truncate and message, an unknown change or subscription type)",
    SourceRefusalReason.MISSING_ID: "the record id or the event time is absent or blank "
    "where the mapping says it is",
    SourceRefusalReason.INVALID_EVENT: "the translated event breaks the ChangeEvent "
    "contract (a bound of docs/events.md, the event time); detail gives the contract's reason",
    SourceRefusalReason.BAD_SIGNATURE: "HTTP sources: the signature is missing, wrong or "
    "older than allowed; answered 401 and not written to the dead-letter topic",
    SourceRefusalReason.TRANSLATOR_ERROR: "the translator failed unexpectedly; detail names "
    "the exception type",
}

_DLQ_REASON: dict[SourceRefusalReason, DeadLetterReason] = {
    SourceRefusalReason.EMPTY_VALUE: DeadLetterReason.EMPTY_VALUE,
    SourceRefusalReason.TOO_LARGE: DeadLetterReason.TOO_LARGE,
    SourceRefusalReason.INVALID_JSON: DeadLetterReason.INVALID_JSON,
    SourceRefusalReason.INVALID_PAYLOAD: DeadLetterReason.INVALID_EVENT,
    SourceRefusalReason.UNKNOWN_OBJECT: DeadLetterReason.INVALID_FIELD,
    SourceRefusalReason.UNSUPPORTED_OPERATION: DeadLetterReason.INVALID_FIELD,
    SourceRefusalReason.MISSING_ID: DeadLetterReason.MISSING_FIELD,
    SourceRefusalReason.INVALID_EVENT: DeadLetterReason.INVALID_EVENT,
    SourceRefusalReason.BAD_SIGNATURE: DeadLetterReason.INVALID_EVENT,
    SourceRefusalReason.TRANSLATOR_ERROR: DeadLetterReason.PROCESSING_ERROR,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """An input (or one item of a batch) the source cannot translate, with its bytes."""

    reason: SourceRefusalReason
    detail: str
    raw: bytes

    @property
    def dead_letter_reason(self) -> DeadLetterReason:
        """The nearest reason of ``crm.events.dlq``'s closed list (``DeadLetter.reason``)."""
        return _DLQ_REASON[self.reason]

    def as_json(self) -> dict[str, str]:
        """What ``crm-pulse sources test`` prints on stderr."""
        return {"reason": self.reason.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Gap:
    """A change the CRM could not describe (Salesforce ``GAP_*``): no field values.

    The state of ``entity_ids`` (every record of ``crm_object`` when empty, e.g.
    ``GAP_OVERFLOW``) is unknown until a re-sync; it is never read as data.
    """

    source_id: str
    entity: EntityKind | None
    entity_ids: tuple[str, ...]
    change_type: str
    detail: str
    crm_object: str = ""
    event_id: str = ""
    occurred_at: datetime | None = None


@dataclass(slots=True)
class Translation:
    """What one input became: events, refusals, gaps, and skipped inputs (tombstones)."""

    events: list[ChangeEvent] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    #: inputs deliberately not translated (a Debezium tombstone): counted, not refused.
    skipped: int = 0

    def extend(self, other: Translation) -> None:
        self.events.extend(other.events)
        self.refusals.extend(other.refusals)
        self.gaps.extend(other.gaps)
        self.skipped += other.skipped


class Translator(Protocol):
    """A source's pure translator (one per configured source)."""

    source_id: str

    def translate(self, raw: bytes | None, *, received_at: datetime) -> Translation: ...


class Refused(Exception):
    """Raised inside a translator to refuse the current input; caught by :func:`guarded`."""

    def __init__(self, reason: SourceRefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


R = SourceRefusalReason


def refused(raw: bytes | None, reason: SourceRefusalReason, detail: str) -> Translation:
    return Translation(refusals=[Refusal(reason, detail[:1000], raw or b"")])


def parse_json(raw: bytes, max_bytes: int) -> Any:
    """The JSON document of ``raw``, or :class:`Refused` (size first, then syntax)."""
    if not raw:
        raise Refused(R.EMPTY_VALUE, "the input has no bytes")
    if len(raw) > max_bytes:
        raise Refused(R.TOO_LARGE, f"the input has {len(raw)} bytes (at most {max_bytes})")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refused(R.INVALID_JSON, f"not valid JSON: {exc}") from None


def item_bytes(item: Any) -> bytes:
    """One item of a batch as JSON bytes (what its refusal carries)."""
    try:
        return orjson.dumps(item)
    except TypeError:
        return repr(item).encode()


def stable_id(prefix: str, *parts: object) -> str:
    """An event id from the source's own ids: readable when short, hashed when over 200."""
    text = ":".join([prefix, *(str(p) for p in parts)])
    if len(text) <= 200:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return f"{prefix}:sha256:{digest}"


def id_text(value: Any) -> str | None:
    """A record id as text (integers become their decimal string); ``None`` when blank."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def epoch_ms(value: Any) -> datetime | None:
    """Epoch milliseconds (int, float or numeric text) as an aware UTC datetime."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    try:
        return datetime.fromtimestamp(number / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """A ChangeEvent before the contract check (plain Python values)."""

    event_id: str
    source: str
    entity: EntityKind
    entity_id: str
    op: Op
    occurred_at: datetime
    fields: Mapping[str, Any]
    actor: str | None = None
    owner_id: str | None = None
    changed: list[str] | None = None
    snapshot: bool = False


def finish(
    draft: EventDraft, received_at: datetime, limits: DecodeLimits = DEFAULT_LIMITS
) -> ChangeEvent:
    """The draft through the engine's own decoder, or :class:`Refused` ``invalid_event``."""
    doc: dict[str, Any] = {
        "event_id": draft.event_id,
        "source": draft.source,
        "entity": draft.entity.value,
        "entity_id": draft.entity_id,
        "op": draft.op.value,
        "occurred_at": draft.occurred_at.isoformat(),
        "actor": draft.actor,
        "owner_id": draft.owner_id,
        "fields": dict(draft.fields),
        "changed": draft.changed,
    }
    if draft.snapshot:
        doc["snapshot"] = True
    try:
        value = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise Refused(R.INVALID_EVENT, f"the event cannot be written as JSON: {exc}") from None
    decoded = decode_event(RawRecord("", 0, 0, None, value), received_at, limits)
    if isinstance(decoded, DecodeRefusal):
        where = f" ({decoded.field})" if decoded.field else ""
        raise Refused(R.INVALID_EVENT, f"{decoded.reason.value}{where}: {decoded.detail}")
    return decoded


def guarded(raw: bytes | None, run: Any) -> Translation:
    """``run()``'s translation; a :class:`Refused` or any exception becomes a refusal."""
    try:
        result: Translation = run()
        return result
    except Refused as exc:
        return refused(raw, exc.reason, exc.detail)
    except Exception as exc:  # never raise: a defect becomes a refusal naming its type
        return refused(raw, R.TRANSLATOR_ERROR, f"{type(exc).__name__}: {str(exc)[:300]}")
