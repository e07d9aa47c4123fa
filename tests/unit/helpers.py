"""Builders shared by unit tests (pure: no broker)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.decode import RawRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(entity_id: str, op: str = "update", minutes: int = 0, event_id: str | None = None,
          owner: str = "rep-001", **fields: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "source": "test",
        "entity": "deal",
        "entity_id": entity_id,
        "op": op,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "owner_id": owner,
        "fields": fields,
    }


#: input offsets only grow, as on a Kafka partition (an offset read again is a replay)
_OFFSETS = itertools.count()


def raw(value: dict[str, Any] | bytes, offset: int | None = None, partition: int = 0) -> RawRecord:
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    at = next(_OFFSETS) if offset is None else offset
    return RawRecord("crm.events", partition, at, b"k", data)
