"""The model union and the closed registry name the same rule types."""

from __future__ import annotations

import json
import typing
from pathlib import Path

from streams.rules.model import Rule
from streams.rules.registry import REGISTRY
from streams.schemas import all_schemas

REPO = Path(__file__).resolve().parents[2]


def union_types() -> set[str]:
    union = typing.get_args(Rule)[0]
    names = set()
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        names.add(literal)
    return names


def test_union_and_registry_in_step() -> None:
    assert union_types() == set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert spec.name == name


def test_exported_rule_schema_is_up_to_date() -> None:
    exported = json.loads((REPO / "schemas" / "rule.schema.json").read_text())
    current = json.loads(json.dumps(all_schemas()["rule.schema.json"]))
    exported.pop("$schema", None)
    assert exported == current, "run `crm-pulse schemas` and commit schemas/"
