from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.contracts.events import ChangeEvent
from streams.schemas import all_schemas
from streams.settings import Settings
from tests.unit.helpers import event

REPO = Path(__file__).resolve().parents[2]


def test_event_requires_timezone_aware_time() -> None:
    data = event("D1")
    data["occurred_at"] = "2026-03-02T09:00:00"
    with pytest.raises(ValidationError, match="occurred_at"):
        ChangeEvent.model_validate(data)


def test_event_rejects_unknown_entity_kind() -> None:
    with pytest.raises(ValidationError, match="entity"):
        ChangeEvent.model_validate({**event("D1"), "entity": "spaceship"})


def test_committed_schemas_match_the_models() -> None:
    for name, schema in all_schemas().items():
        schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
        committed = json.loads((REPO / "schemas" / name).read_text())
        assert committed == json.loads(json.dumps(schema)), f"run `make schemas` ({name})"


def test_settings_are_frozen_and_hide_the_token() -> None:
    settings = Settings(api_token="s3cret")  # type: ignore[arg-type]
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    with pytest.raises(ValidationError):
        settings.web_port = 1  # type: ignore[misc]
    assert settings.web_host == "127.0.0.1"
