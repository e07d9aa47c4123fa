"""The sources file (``CRM_PULSE_SOURCES_FILE``): which CRM sources a worker reads.

One YAML file: ``sources: [...]`` (or a bare list), each source validated by a pydantic
union on ``type`` (``schemas/sources.schema.json``). A source has an ``id`` (its
``ChangeEvent.source``, metric label and DLQ field), a ``transport`` (Kafka topics or an
HTTP endpoint with its secret) and its ``mapping``: CRM object -> entity kind, id field,
owner field, renames, value maps, dropped fields and a record URL template. A mapping may
``include`` a starter mapping file of ``sources/`` (relative to the sources file); what the
source declares itself overrides the included objects one by one.

Secrets are never in the file: an HTTP transport names an environment variable or a file
holding it, read on demand as a :class:`~pydantic.SecretStr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jmespath
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from streams.contracts.events import EntityKind, Op

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


class SourceConfigError(Exception):
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


def _line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    if node is None:
        return None
    line = node.start_mark.line + 1
    current = node
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == str(part):
                    nxt, line = value_node, key_node.start_mark.line + 1
                    break
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(current.value)
        ):
            nxt = current.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            break
        current = nxt
    return line


_TYPES = {"debezium", "salesforce_cdc", "hubspot_webhook", "mapping"}


def _untagged(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The location without the union tags pydantic inserts (source type, transport kind)."""
    out: list[int | str] = []
    for index, part in enumerate(loc):
        if index == 2 and loc[0] == "sources" and part in _TYPES:
            continue
        if out and out[-1] == "transport" and part in ("topic", "http"):
            continue
        out.append(part)
    return tuple(out)


def _problems(exc: ValidationError, data: Any, node: yaml.Node | None, name: str) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        shown = _untagged(loc)
        where_loc: tuple[int | str, ...] = shown
        source_id = None
        if len(shown) >= 2 and shown[0] == "sources" and isinstance(shown[1], int):
            item = data.get("sources", [])[shown[1]] if isinstance(data, dict) else None
            source_id = item.get("id") if isinstance(item, dict) else None
            shown = shown[2:]
        field = ".".join(str(p) for p in shown) or "(source)"
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = f"{field}.type" if field != "(source)" else "type"
            where_loc = (*where_loc, "type")
        line = _line(node, where_loc)
        at = f"{name}:{line}" if line else name
        who = f" source {source_id!r}" if isinstance(source_id, str) else ""
        out.append(f"{at}:{who} field '{field}': {error['msg']}")
    return out


def _compose(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SourceConfigError(
            [f"{name}{line}: field '(yaml)': {getattr(exc, 'problem', None) or exc}"]
        ) from None
    return data, node


def _include(path: Path, include: str, source_id: str) -> dict[str, ObjectMapping]:
    target = (path.parent / include) if not Path(include).is_absolute() else Path(include)
    try:
        text = target.read_text()
    except OSError as exc:
        raise SourceConfigError(
            [f"{path}: source {source_id!r} field 'mapping.include': cannot read {target} "
             f"({type(exc).__name__})"]
        ) from None  # fmt: skip
    data, node = _compose(text, str(target))
    try:
        parsed = MappingFile.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{target}:{_line(node, tuple(e['loc'])) or ''}: field "
            f"'{'.'.join(str(p) for p in e['loc'])}': {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        raise SourceConfigError(problems) from None
    return dict(parsed.objects)


def _resolve(source: SourceConfig, path: Path) -> SourceConfig:
    include = source.mapping.include
    if include is None:
        return source
    objects = _include(path, include, source.id)
    objects.update(source.mapping.objects)
    mapping = SourceMapping(include=include, objects=objects)
    return source.model_copy(update={"mapping": mapping})


def parse_sources(text: str, name: str = "<text>", base: Path | None = None) -> SourcesConfig:
    """Validate a sources file's text (``base``: the folder includes are relative to)."""
    data, node = _compose(text, name)
    if data is None:
        data = {"sources": []}
    elif isinstance(data, list):
        data = {"sources": data}
        if node is not None:
            key = yaml.ScalarNode("tag:yaml.org,2002:str", "sources", node.start_mark)
            node = yaml.MappingNode("tag:yaml.org,2002:map", [(key, node)], node.start_mark)
    try:
        parsed = SourcesFile.model_validate(data)
    except ValidationError as exc:
        raise SourceConfigError(_problems(exc, data, node, name)) from None
    problems: list[str] = []
    seen: set[str] = set()
    resolved = []
    for index, source in enumerate(parsed.sources):
        if source.id in seen:
            line = _line(node, ("sources", index, "id"))
            problems.append(f"{name}:{line}: source {source.id!r} field 'id': duplicate id")
        seen.add(source.id)
        try:
            one = _resolve(source, (base or Path(".")) / name)
        except SourceConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not one.mapping.objects:
            line = _line(node, ("sources", index, "mapping"))
            problems.append(
                f"{name}:{line}: source {source.id!r} field 'mapping': no object is mapped "
                "(declare objects or include a starter mapping of sources/)"
            )
        resolved.append(one)
    if problems:
        raise SourceConfigError(problems)
    return SourcesConfig(Path(name) if base is not None else None, tuple(resolved))


def load_sources(path: Path) -> SourcesConfig:
    """Read and validate a sources file; :class:`SourceConfigError` lists every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SourceConfigError([f"{path}: cannot read ({type(exc).__name__}: {exc})"]) from None
    config = parse_sources(text, str(path), Path("."))
    return SourcesConfig(path, config.sources)


def sources_schema() -> dict[str, Any]:
    """JSON Schema of the sources file (``schemas/sources.schema.json``)."""
    schema = SourcesFile.model_json_schema()
    schema["title"] = "SourcesFile"
    schema["description"] = (
        "The sources file (CRM_PULSE_SOURCES_FILE): sources: [...], each one of the source "
        "types debezium, salesforce_cdc, hubspot_webhook, mapping."
    )
    return schema


def mapping_file_schema() -> dict[str, Any]:
    """JSON Schema of a starter mapping file of ``sources/``."""
    return MappingFile.model_json_schema()
