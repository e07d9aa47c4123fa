"""One CRM object's mapping applied to its fields: drop, keep, value maps, renames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from streams.contracts.events import EntityKind
from streams.decode import DEFAULT_LIMITS, DecodeLimits
from streams.sources.base import Translation, epoch_ms, guarded, id_text
from streams.sources.config import ObjectMapping, SourceMapping, SourcesConfig


def value_key(value: Any) -> str | None:
    """The text a value map is keyed by: ids and stage ids come as text or integers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def as_number(value: Any) -> Any:
    """Numeric text as an int or a finite float; anything else as it is."""
    if not isinstance(value, str) or not value.strip():
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def as_date(value: Any) -> Any:
    """Epoch milliseconds (a number or its text) as ``YYYY-MM-DD``; else as it is."""
    if isinstance(value, bool):
        return value
    moment = epoch_ms(value) if isinstance(value, int | float | str) else None
    if moment is None or (isinstance(value, str) and not value.strip().lstrip("-").isdigit()):
        return value
    return moment.date().isoformat()


@dataclass(frozen=True, slots=True)
class FieldMap:
    """The compiled form of an :class:`ObjectMapping` (sets and dicts, looked up per field)."""

    crm_object: str
    entity: EntityKind
    id_field: str | None
    owner_field: str | None
    actor_field: str | None
    rename: Mapping[str, str]
    values: Mapping[str, Mapping[str, Any]]
    drop: frozenset[str]
    keep: frozenset[str] | None
    numbers: frozenset[str]
    dates: frozenset[str]
    record_url: str | None

    @classmethod
    def of(cls, crm_object: str, mapping: ObjectMapping) -> FieldMap:
        return cls(
            crm_object=crm_object,
            entity=mapping.entity,
            id_field=mapping.id_field,
            owner_field=mapping.owner_field,
            actor_field=mapping.actor_field,
            rename=dict(mapping.rename),
            values={k: dict(v) for k, v in mapping.values.items()},
            drop=frozenset(mapping.drop),
            keep=frozenset(mapping.keep) if mapping.keep is not None else None,
            numbers=frozenset(mapping.numbers),
            dates=frozenset(mapping.dates),
            record_url=mapping.record_url,
        )

    def forwarded(self, name: str) -> bool:
        return name not in self.drop and (self.keep is None or name in self.keep)

    def fields(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The CRM fields as CRM Pulse fields (dropped ones out, values mapped, renamed)."""
        out: dict[str, Any] = {}
        rename, values = self.rename, self.values
        for name, value in raw.items():
            if not self.forwarded(name):
                continue
            if name in self.numbers:
                value = as_number(value)
            elif name in self.dates:
                value = as_date(value)
            table = values.get(name)
            if table is not None and value is not None:
                key = value_key(value)
                if key is not None and key in table:
                    value = table[key]
            out[rename.get(name, name)] = value
        return out

    def names(self, names: Iterable[str]) -> list[str]:
        """Changed CRM field names as CRM Pulse names (dropped ones out, order kept)."""
        out: list[str] = []
        for name in names:
            if self.forwarded(name):
                renamed = self.rename.get(name, name)
                if renamed not in out:
                    out.append(renamed)
        return out

    def owner(self, raw: Mapping[str, Any]) -> str | None:
        return id_text(raw.get(self.owner_field)) if self.owner_field else None

    def actor(self, raw: Mapping[str, Any]) -> str | None:
        return id_text(raw.get(self.actor_field)) if self.actor_field else None

    def url(self, entity_id: str, source_id: str) -> str | None:
        """The record's page in the CRM, from the ``record_url`` template."""
        if self.record_url is None:
            return None
        return self.record_url.format_map(
            {"id": entity_id, "entity": self.entity.value, "object": self.crm_object,
             "source": source_id}
        )  # fmt: skip


def field_maps(objects: Mapping[str, ObjectMapping]) -> dict[str, FieldMap]:
    """CRM object name -> compiled mapping (names compared as given, and lower-cased)."""
    maps = {name: FieldMap.of(name, mapping) for name, mapping in objects.items()}
    for name, fmap in list(maps.items()):
        maps.setdefault(name.lower(), fmap)
    return maps


def find_map(maps: Mapping[str, FieldMap], *names: str | None) -> FieldMap | None:
    """The first object of ``names`` (exact, then lower-cased) the mapping declares."""
    for name in names:
        if name:
            found = maps.get(name) or maps.get(name.lower())
            if found is not None:
                return found
    return None


class MappedSource(Protocol):
    """A source's configuration as a translator reads it: its id and its objects' mapping."""

    @property
    def id(self) -> str: ...

    @property
    def mapping(self) -> SourceMapping: ...


SourceT = TypeVar("SourceT", bound=MappedSource)


class MappedTranslator(Generic[SourceT]):
    """What the translators of a mapped source share: the source's id, configuration and
    decode limits, its objects' mappings compiled once, and :meth:`translate` guarding
    :meth:`_translate` (no input raises; a refusal or defect becomes a refusal)."""

    def __init__(self, config: SourceT, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
        self.source_id = config.id
        self.config = config
        self.limits = limits
        self.maps = field_maps(config.mapping.objects)

    def translate(self, raw: bytes | None, *, received_at: datetime) -> Translation:
        return guarded(raw, lambda: self._translate(raw or b"", received_at))

    def _translate(self, raw: bytes, received_at: datetime) -> Translation:
        raise NotImplementedError


def record_url(
    config: SourcesConfig, source_id: str, entity: str, entity_id: str,
    crm_object: str | None = None,
) -> str | None:  # fmt: skip
    """The CRM page of a record: the ``record_url`` of ``crm_object``, else of the first
    object of ``source_id``'s mapping that becomes ``entity`` and declares one."""
    source = config.get(source_id)
    if source is None:
        return None
    objects = source.mapping.objects
    if crm_object is not None and crm_object in objects:
        return FieldMap.of(crm_object, objects[crm_object]).url(entity_id, source_id)
    for name, mapping in objects.items():
        if mapping.entity == entity and mapping.record_url is not None:
            return FieldMap.of(name, mapping).url(entity_id, source_id)
    return None
