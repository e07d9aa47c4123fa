"""docs/alerts.md stays true: its JSON example is a valid AlertEvent, its code compiles,
and the exported schemas match the contracts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streams.contracts.alerts import AlertEvent
from streams.schemas import all_schemas

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "alerts.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def test_json_example_is_a_valid_alert_event() -> None:
    [example] = blocks("json")
    alert = AlertEvent.model_validate_json(example)
    assert alert.schema_version == 1
    documented = set(json.loads(example))
    assert documented == set(AlertEvent.model_fields)  # every field shown, none invented


def test_python_examples_compile_and_consumer_is_short() -> None:
    sources = blocks("python")
    for source in sources:
        compile(source, "docs/alerts.md", "exec")
    consumer = next(s for s in sources if "AIOKafkaConsumer" in s)
    assert len([line for line in consumer.splitlines() if line.strip()]) <= 15


def test_exported_schemas_are_up_to_date() -> None:
    for name in ("alert-event.schema.json", "silence.schema.json", "rule.schema.json"):
        on_disk = json.loads((REPO / "schemas" / name).read_text())
        on_disk.pop("$schema", None)
        assert on_disk == json.loads(json.dumps(all_schemas()[name])), name
