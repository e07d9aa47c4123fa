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

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from streams.sources.models import (
    DebeziumSource,
    EventExpressions,
    HttpTransport,
    HubspotWebhookSource,
    MappingFile,
    MappingSource,
    ObjectMapping,
    SalesforceCdcSource,
    SecretRef,
    SourceConfig,
    SourceConfigError,
    SourceMapping,
    SourcesConfig,
    SourcesFile,
    TopicTransport,
)
from streams.yamlpos import node_line

__all__ = [
    "DebeziumSource",
    "EventExpressions",
    "HttpTransport",
    "HubspotWebhookSource",
    "MappingFile",
    "MappingSource",
    "ObjectMapping",
    "SalesforceCdcSource",
    "SecretRef",
    "SourceConfig",
    "SourceConfigError",
    "SourceMapping",
    "SourcesConfig",
    "SourcesFile",
    "TopicTransport",
    "load_sources",
    "mapping_file_schema",
    "parse_sources",
    "sources_schema",
]


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
        line = node_line(node, where_loc)
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
            f"{target}:{node_line(node, tuple(e['loc'])) or ''}: field "
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
            line = node_line(node, ("sources", index, "id"))
            problems.append(f"{name}:{line}: source {source.id!r} field 'id': duplicate id")
        seen.add(source.id)
        try:
            one = _resolve(source, (base or Path(".")) / name)
        except SourceConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not one.mapping.objects:
            line = node_line(node, ("sources", index, "mapping"))
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
