"""What a rule sees: one change of one record, before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.contracts.events import ChangeEvent


@dataclass(frozen=True, slots=True)
class Change:
    """The record before and after one event, with the names of the fields that changed."""

    event: ChangeEvent
    before: Mapping[str, Any] | None
    after: Mapping[str, Any]
    changed: frozenset[str]
    now: datetime
    #: record bookkeeping before the event (epoch s / owner); ``None`` for a new record.
    first_seen: float | None = None
    last_seen: float | None = None
    owner_before: str | None = None
    #: record owner after the event.
    owner: str | None = None

    @property
    def is_create(self) -> bool:
        return self.before is None

    def activation(self) -> dict[str, Any]:
        """Variables of a CEL expression: ``<entity>``/``record`` (after), ``old``, ``event``."""
        after = dict(self.after)
        event = self.event
        return {
            event.entity.value: after,
            "record": after,
            "old": dict(self.before) if self.before is not None else {},
            "changed": sorted(self.changed),
            "event": {
                "op": event.op.value,
                "source": event.source,
                "entity_id": event.entity_id,
                "owner_id": event.owner_id or "",
                "actor": event.actor or "",
            },
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of one rule on one change.

    ``holds``: the rule's situation is present now. ``point``: each time it holds is an
    episode of its own (a movement, e.g. stage backwards) instead of a lasting situation
    (e.g. a missing field) that opens an episode until it stops holding.
    ``state``: new per-rule, per-record state (``None`` keeps the current one).
    """

    holds: bool
    evidence: Mapping[str, Any]
    point: bool = False
    state: Mapping[str, Any] | None = None


NOT_HOLDING = Outcome(holds=False, evidence={})
