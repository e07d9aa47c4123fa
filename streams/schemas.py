"""Exports the JSON Schema of every public contract to ``schemas/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.contracts import AlertEvent, DeadLetter, KpiSnapshot
from streams.contracts.events import change_event_schema
from streams.contracts.silences import Silence
from streams.rules.model import RULE_ADAPTER
from streams.sources.config import mapping_file_schema, sources_schema


def all_schemas() -> dict[str, dict[str, Any]]:
    rule_schema = RULE_ADAPTER.json_schema()
    rule_schema["title"] = "Rule"
    file_schema = {
        "title": "RuleFile",
        "description": "A rules/*.yaml file: one rule, a list, or {rules: [...]}.",
        "$defs": rule_schema.pop("$defs", {}),
        "anyOf": [
            {"$ref": "#/$defs/Rule"},
            {"type": "array", "items": {"$ref": "#/$defs/Rule"}},
            {
                "type": "object",
                "properties": {"rules": {"type": "array", "items": {"$ref": "#/$defs/Rule"}}},
                "required": ["rules"],
            },
        ],
    }
    file_schema["$defs"]["Rule"] = rule_schema
    return {
        "change-event.schema.json": change_event_schema(),
        "alert-event.schema.json": AlertEvent.model_json_schema(),
        "dead-letter.schema.json": DeadLetter.model_json_schema(),
        "kpi-snapshot.schema.json": KpiSnapshot.model_json_schema(),
        "rule.schema.json": file_schema,
        "silence.schema.json": Silence.model_json_schema(),
        "sources.schema.json": sources_schema(),
        "source-mapping.schema.json": mapping_file_schema(),
    }


def export_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
        path = out / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
