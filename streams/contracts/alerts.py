"""``AlertEvent``: the versioned JSON contract of ``crm.alerts``.

Consumers deduplicate on ``(alert_id, sequence)``: the same episode of the same rule on
the same subject always carries the same ``alert_id``; each new status of the episode
increases ``sequence``.

Every alert fits one Kafka message whatever the record held: ``title`` is cut to
:data:`TITLE_MAX_CHARS`, ``message`` to :data:`MESSAGE_MAX_CHARS` (ending with ``…``),
each ``evidence`` value to :data:`EVIDENCE_VALUE_MAX_BYTES` of JSON and the whole evidence
to :data:`EVIDENCE_MAX_BYTES` (a cut value reads ``"…[cut: N chars]"`` or
``"[cut: N bytes of JSON]"``). ``owner_id`` and ``escalated_to`` taken from a dirty record
(a number, say) are turned into text instead of refusing the alert.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from streams.jsonbytes import cut_text, dumps, sanitise

SCHEMA_VERSION: Literal[1] = 1
TITLE_MAX_CHARS = 1_000
MESSAGE_MAX_CHARS = 4_000
EVIDENCE_VALUE_MAX_BYTES = 2_000
EVIDENCE_MAX_BYTES = 16_000
ID_MAX_CHARS = 1_000
LINKS_MAX = 10
LINK_URL_MAX_CHARS = 2_048


def as_id(value: Any) -> str | None:
    """An id read from a record as text (a CRM may send ``12345``); ``None`` stays."""
    if value is None or isinstance(value, str):
        return value if value is None or len(value) <= ID_MAX_CHARS else value[:ID_MAX_CHARS]
    text = dumps(value).decode()  # a number as JSON; never raises (streams.jsonbytes)
    return text.strip('"')[:ID_MAX_CHARS]


def _bounded(value: Any, limit: int) -> Any:
    clean = sanitise(value)
    if isinstance(clean, str):
        return clean if len(clean) * 4 <= limit else _cut_string(clean, limit)
    if clean is None or isinstance(clean, bool | int | float):
        return clean
    size = len(dumps(clean))
    return clean if size <= limit else f"[cut: {size} bytes of JSON]"


def _cut_string(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    keep = max(0, limit // 4 - 32)
    return f"{text[:keep]}…[cut: {len(text) - keep} chars]"


def bounded_evidence(evidence: Any) -> dict[str, Any]:
    """Evidence whose values and total fit the caps of the module docstring."""
    if not isinstance(evidence, dict):
        return {}
    limit = EVIDENCE_VALUE_MAX_BYTES
    out = {cut_text(str(k), 200): _bounded(v, limit) for k, v in evidence.items()}
    if len(dumps(out)) <= EVIDENCE_MAX_BYTES:
        return out
    for key in sorted(out, key=lambda k: len(dumps(out[k])), reverse=True):
        out[key] = f"[cut: {len(dumps(out[key]))} bytes of JSON]"
        if len(dumps(out)) <= EVIDENCE_MAX_BYTES:
            break
    return out


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

    @field_validator("id", "scope", mode="before")
    @classmethod
    def _text_id(cls, value: Any) -> Any:
        return as_id(value)


class AlertLink(BaseModel):
    """A link from the alert to where a person acts on it (e.g. the record in the CRM)."""

    model_config = ConfigDict(frozen=True)

    rel: str = Field("record", description="What the link opens: record (the CRM record page).")
    url: str = Field(description="Absolute http(s) URL.", max_length=LINK_URL_MAX_CHARS)
    title: str | None = Field(None, description="Label, e.g. the source id (salesforce).")


def bounded_links(value: Any) -> Any:
    """At most :data:`LINKS_MAX` links; a link that is not an http(s) URL within
    :data:`LINK_URL_MAX_CHARS` is left out (an alert is never refused for a link)."""
    if not isinstance(value, list):
        return value
    kept = []
    for item in value:
        url = item.url if isinstance(item, AlertLink) else (
            item.get("url") if isinstance(item, dict) else None
        )  # fmt: skip
        if (
            isinstance(url, str)
            and url.startswith(("https://", "http://"))
            and len(url) <= LINK_URL_MAX_CHARS
        ):
            kept.append(item)
    return kept[:LINKS_MAX]


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
    links: list[AlertLink] = Field(
        default_factory=list,
        description="Links to act on the alert: the record in its CRM (from the source "
        "mapping's record_url). Added in schema version 1; absent in older alerts.",
    )

    @field_validator("owner_id", "escalated_to", "silenced_by", mode="before")
    @classmethod
    def _text_ids(cls, value: Any) -> Any:
        return as_id(value)

    @field_validator("title", mode="before")
    @classmethod
    def _short_title(cls, value: Any) -> Any:
        return cut_text(value, TITLE_MAX_CHARS) if isinstance(value, str) else value

    @field_validator("message", mode="before")
    @classmethod
    def _short_message(cls, value: Any) -> Any:
        return cut_text(value, MESSAGE_MAX_CHARS) if isinstance(value, str) else value

    @field_validator("evidence", mode="before")
    @classmethod
    def _bounded_evidence(cls, value: Any) -> Any:
        return bounded_evidence(value)

    @field_validator("links", mode="before")
    @classmethod
    def _bounded_links(cls, value: Any) -> Any:
        return bounded_links(value)

    @field_validator("event_ids", mode="before")
    @classmethod
    def _bounded_event_ids(cls, value: Any) -> Any:
        if isinstance(value, list) and (len(value) > 100 or any(
            not isinstance(v, str) or len(v) > ID_MAX_CHARS for v in value
        )):  # fmt: skip
            return [as_id(v) for v in value[-100:]]
        return value
