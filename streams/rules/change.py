"""What a rule sees: one change of one record, before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.contracts.events import ChangeEvent
from streams.rules.cel_expr import cel_context
from streams.rules.cel_values import as_cel


@dataclass(frozen=True, slots=True)
class Change:
    """The record before and after one event, with the names of the fields that changed."""

    event: ChangeEvent
    before: Mapping[str, Any] | None
    after: Mapping[str, Any]
    changed: frozenset[str]
    now: datetime
    #: Owner's timezone from the org directory (business-time rules), when known.
    tz: str | None = None
    #: ``True`` when a timer re-evaluates the record (no new event; ``event`` is synthetic).
    timer: bool = False

    #: CEL variables the live rules use (``None``: all); the CEL context converts only these.
    cel_names: frozenset[str] | None = None
    _activation: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    _cel: Any = field(default=None, compare=False, repr=False)
    #: record bookkeeping before the event (epoch s / owner); ``None`` for a new record.
    first_seen: float | None = None
    last_seen: float | None = None
    owner_before: str | None = None
    #: record owner after the event.
    owner: str | None = None
    #: ``(partition, offset)`` of the input record: identifies the change for downstream
    #: deduplication (KPI facts); ``None`` for timer re-evaluations.
    position: tuple[int, int] | None = None
    #: What each of the engine's change checks returned for this change, by the check's
    #: stage name (e.g. its KPI facts), kept for the shipper's hooks: not computed twice.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_create(self) -> bool:
        return self.before is None

    def activation(self) -> dict[str, Any]:
        """Variables of a CEL expression and of message templates.

        ``<entity>``/``record`` (the record after the change), ``old`` (before; ``{}`` on
        create), ``changed`` (names), ``event`` (op, source, entity_id, owner_id, actor,
        ``occurred_at`` ISO 8601 and ``date`` YYYY-MM-DD). Every JSON number of the record
        is a double (``as_cel``), so ``deal.amount > old.amount * 1.5`` works whether the
        CRM sent ``1200`` or ``1200.0``. Built once per change; callers get a fresh outer dict.
        """
        cached = self._activation
        if cached is None:
            after = as_cel(self.after)
            event = self.event
            cached = {
                event.entity.value: after,
                "record": after,
                "old": as_cel(self.before) if self.before is not None else {},
                "changed": sorted(self.changed),
                "event": {
                    "op": event.op.value,
                    "source": event.source,
                    "entity_id": event.entity_id,
                    "owner_id": event.owner_id or "",
                    "actor": event.actor or "",
                    "occurred_at": event.occurred_at.isoformat(),
                    "date": event.occurred_at.date().isoformat(),
                },
            }
            object.__setattr__(self, "_activation", cached)
        return dict(cached)

    def cel_variables(self) -> Mapping[str, Any]:
        """The cached activation itself (read-only: compiled expressions never write)."""
        if self._activation is None:
            self.activation()
        assert self._activation is not None
        return self._activation

    def cel_context(self) -> Any:
        """The activation converted once for CEL and shared by every rule of this change
        (converting a dict per evaluation costs more than the evaluation itself)."""
        if self._cel is None:
            variables = self.activation()
            if self.cel_names is not None:
                variables = {k: v for k, v in variables.items() if k in self.cel_names}
            object.__setattr__(self, "_cel", cel_context(variables))
        return self._cel


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
    #: Why the rule could not judge the record (missing/bad field): no alert, counted.
    skip: str | None = None


NOT_HOLDING = Outcome(holds=False, evidence={})
