"""The models of the sources file: sources, transports, secrets and mappings.

Validated by :mod:`streams.sources.config`, which reads the YAML and locates errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jmespath
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    field_validator,
    model_validator,
)

from streams.contracts.events import EntityKind, Op
from streams.errors import PulseError

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _key_text(key: Any) -> Any:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return key


class ObjectMapping(_Model):
    """How one CRM object (table, Salesforce object, HubSpot object type) becomes records."""

    entity: EntityKind = Field(description="The entity kind its records become.")
    id_field: str | None = Field(
        None,
        description="Field holding the record id (the CRM's name, before renames). "
        "Debezium: default 'id'. Salesforce and HubSpot take the id from the header "
        "or objectId; the mapping source from its entity_id expression.",
    )
    owner_field: str | None = Field(
        None, description="CRM field holding the record owner (-> ChangeEvent.owner_id)."
    )
    actor_field: str | None = Field(
        None, description="CRM field holding who made the change (-> ChangeEvent.actor)."
    )
    rename: dict[str, str] = Field(
        default_factory=dict, description="CRM field name -> field name in CRM Pulse."
    )
    values: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="CRM field name -> {CRM value (as text) -> value}, e.g. stage ids to "
        "stage names. A value not listed is kept as sent.",
    )
    drop: list[str] = Field(
        default_factory=list, description="CRM fields never forwarded (before renames)."
    )
    numbers: list[str] = Field(
        default_factory=list,
        description="CRM fields whose numeric text becomes a number (HubSpot sends every "
        "property as text: amount, probability). Text that is no number is kept as sent.",
    )
    dates: list[str] = Field(
        default_factory=list,
        description="CRM fields holding epoch milliseconds (a number or its text) that become "
        "YYYY-MM-DD dates (HubSpot's closedate).",
    )
    keep: list[str] | None = Field(
        None, description="When set, only these CRM fields are forwarded (before renames)."
    )
    record_url: str | None = Field(
        None,
        description="Link to the record in the CRM: a template with {id}, {entity}, "
        "{object} and {source}, e.g. https://acme.lightning.force.com/lightning/r/"
        "Opportunity/{id}/view.",
    )

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        """YAML reads ``1: Prospecting`` and ``true: Won`` with a number or boolean key: the
        key is the value's text, as the lookup makes it."""
        if not isinstance(value, dict):
            return value
        return {
            field: {_key_text(k): v for k, v in table.items()} if isinstance(table, dict) else table
            for field, table in value.items()
        }

    @field_validator("record_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format_map({"id": "x", "entity": "x", "object": "x", "source": "x"})
            except (KeyError, ValueError, IndexError) as exc:
                raise ValueError(
                    f"record_url may use only {{id}}, {{entity}}, {{object}}, {{source}} ({exc})"
                ) from None
        return value


class SourceMapping(_Model):
    """CRM objects of one source; ``include`` a starter mapping of ``sources/``."""

    include: str | None = Field(
        None, description="A mapping file (relative to the sources file), e.g. salesforce.yaml."
    )
    objects: dict[str, ObjectMapping] = Field(
        default_factory=dict, description="CRM object name -> its mapping (overrides include)."
    )


class MappingFile(_Model):
    """A starter mapping file of ``sources/``: ``objects:`` only."""

    description: str | None = None
    objects: dict[str, ObjectMapping]


class TopicTransport(_Model):
    """Kafka topics the source reads (its own consumer group)."""

    kind: Literal["topic"] = "topic"
    topics: list[str] = Field(min_length=1, description="Topics to read.")


class SecretRef(_Model):
    """Where a secret is: an environment variable or a file (first line). Never inline."""

    env: str | None = Field(None, description="Name of the environment variable.")
    file: Path | None = Field(None, description="File holding the secret (first line).")

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def read(self, environ: Mapping[str, str] | None = None) -> SecretStr:
        """The secret; :class:`SourceConfigError` when it is absent or empty."""
        env = os.environ if environ is None else environ
        if self.env is not None:
            value = env.get(self.env, "")
            where = f"environment variable {self.env}"
        else:
            assert self.file is not None
            try:
                value = self.file.read_text().splitlines()[0] if self.file.exists() else ""
            except (OSError, IndexError, UnicodeDecodeError):
                value = ""
            where = f"file {self.file}"
        if not value.strip():
            raise SourceConfigError([f"the secret ({where}) is not set or empty"])
        return SecretStr(value.strip())


class HttpTransport(_Model):
    """``POST /sources/<id>`` on the worker's web server."""

    kind: Literal["http"] = "http"
    secret: SecretRef = Field(description="The shared secret (HubSpot: the app's secret).")
    public_url: str | None = Field(
        None,
        description="The URL the CRM calls, as it sees it (scheme, host, path), when a proxy "
        "rewrites it: HubSpot signs the full URI.",
    )
    signature_header: str = Field(
        "X-CRM-Pulse-Signature",
        description="Mapping sources: the header holding sha256=<hex HMAC-SHA256 of the body>.",
    )
    max_age_s: float = Field(
        300.0, gt=0, description="HubSpot: requests whose timestamp is older are refused."
    )


class _Source(_Model):
    id: str = Field(pattern=_ID, description="Source id: ChangeEvent.source, metric label.")
    description: str | None = None
    enabled: bool = True
    mapping: SourceMapping = Field(default_factory=SourceMapping)


class DebeziumSource(_Source):
    """Debezium change records (PostgreSQL, MySQL) from the topics Kafka Connect writes."""

    type: Literal["debezium"]
    transport: TopicTransport


class SalesforceCdcSource(_Source):
    """Salesforce Change Data Capture events (Pub/Sub API or Kafka connector JSON)."""

    type: Literal["salesforce_cdc"]
    transport: TopicTransport


class HubspotWebhookSource(_Source):
    """HubSpot webhook batches, signed with X-HubSpot-Signature-v3."""

    type: Literal["hubspot_webhook"]
    transport: HttpTransport
    portal_id: int | None = Field(None, description="HubSpot account id, for record URLs.")


class EventExpressions(_Model):
    """JMESPath expressions (the jmespath library) from one item to ChangeEvent fields."""

    object: str = Field(description="The CRM object name, looked up in mapping.objects.")
    entity_id: str
    op: str = Field(description="Its value goes through op_values.")
    occurred_at: str | None = Field(
        None, description="RFC 3339 text or epoch seconds/milliseconds; absent: received time."
    )
    event_id: str | None = Field(
        None, description="The sender's delivery id; absent: a hash of the item's bytes."
    )
    actor: str | None = None
    owner_id: str | None = None
    fields: str = Field(description="An object: the record's fields.")
    changed: str | None = Field(None, description="A list of changed field names.")

    @field_validator("*")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _jmespath(value)
        return value


def _jmespath(text: str) -> None:
    try:
        jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"not a JMESPath expression: {exc}") from None


class MappingSource(_Source):
    """Any CRM that sends JSON: a JMESPath expression per ChangeEvent field."""

    type: Literal["mapping"]
    transport: Annotated[TopicTransport | HttpTransport, Field(discriminator="kind")]
    items: str | None = Field(
        None, description="JMESPath to the list of items of a batch; absent: one item."
    )
    event: EventExpressions

    @field_validator("items")
    @classmethod
    def _items_compile(cls, value: str | None) -> str | None:
        if value is not None:
            _jmespath(value)
        return value

    op_values: dict[str, Op] = Field(
        default_factory=lambda: {"create": Op.CREATE, "update": Op.UPDATE, "delete": Op.DELETE},
        description="Value of the op expression -> create, update or delete.",
    )


SourceConfig = Annotated[
    DebeziumSource | SalesforceCdcSource | HubspotWebhookSource | MappingSource,
    Field(discriminator="type"),
]
SOURCE_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


class SourcesFile(_Model):
    """The sources file: ``sources: [...]``."""

    sources: list[SourceConfig] = Field(default_factory=list)


class SourceConfigError(PulseError):
    """The sources file is invalid; ``problems`` lists every error located for humans."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """The validated sources of one file, with their included mappings resolved."""

    path: Path | None
    sources: tuple[SourceConfig, ...]

    def get(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.sources]
