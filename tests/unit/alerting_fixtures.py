"""Builders shared by the alerting unit tests (pure, no broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from streams.contracts.events import ChangeEvent
from streams.judge.state import merge_fields
from streams.rules.change import Change
from streams.rules.model import parse_rule
from streams.rules.ruleset import CompiledRule, compile_rule

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def rule(**data: Any) -> CompiledRule:
    data.setdefault("id", "r1")
    data.setdefault("message", "m {subject.id}")
    return compile_rule(parse_rule(data))


def change(
    before: dict[str, Any] | None, fields: dict[str, Any], *, at: datetime = T0,
    now: datetime | None = None, op: str | None = None, owner: str = "rep-1",
    entity_id: str = "D-1", tz: str | None = None, event_id: str | None = None,
) -> Change:  # fmt: skip
    event = ChangeEvent(
        event_id=event_id or str(uuid.uuid4()), source="t", entity="deal", entity_id=entity_id,
        op=op or ("create" if before is None else "update"), occurred_at=at, owner_id=owner,
        fields=fields,
    )  # fmt: skip
    after, changed = merge_fields(before, event)
    return Change(event=event, before=before, after=after, changed=changed, now=now or at, tz=tz)
