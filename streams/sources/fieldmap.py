"""One CRM object's mapping applied to its fields: drop, keep, value maps, renames."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.contracts.events import EntityKind
from streams.sources.base import id_text
from streams.sources.config import ObjectMapping


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
