"""Helpers of the alerting integration tests: rule folders, events at wall-clock time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.integration.kafka_io import event_bytes


def write_rules(folder: Path, rules: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False))
    return folder


def now_event(
    entity_id: str, op: str, *, entity: str = "deal", owner: str = "rep-001",
    at: datetime | None = None, **fields: Any,
) -> tuple[bytes, bytes]:  # fmt: skip
    return event_bytes(
        event_id=str(uuid.uuid4()), source="test", entity=entity, entity_id=entity_id, op=op,
        occurred_at=(at or datetime.now(UTC)).isoformat(), owner_id=owner, fields=fields,
    )  # fmt: skip


def snapshot(
    kpi: str, value: float | None, *, scope: tuple[str, str] = ("team", "west"),
    at: datetime | None = None, trust: float = 0.95, untrusted: bool = False,
) -> tuple[bytes, bytes]:  # fmt: skip
    when = at or datetime.now(UTC)
    body = {
        "kpi": kpi, "scope": {"kind": scope[0], "id": scope[1]},
        "window": {"kind": "rolling_7d", "start": (when - timedelta(days=7)).isoformat(),
                   "end": when.isoformat()},
        "value": value, "unit": "ratio", "trust": {"value": trust, "reasons": []},
        "untrusted": untrusted, "computed_at": when.isoformat(),
    }  # fmt: skip
    return f"{kpi}|{scope[0]}:{scope[1]}|rolling_7d".encode(), orjson.dumps(body)


def by(alerts: list[dict[str, Any]], rule: str, subject: str | None = None,
       status: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    return [
        a for a in alerts
        if a["rule_id"] == rule and (subject is None or a["subject"]["id"] == subject)
        and (status is None or a["status"] == status)
    ]  # fmt: skip
