"""What the shipper ships: a writer's own records, the state writes of a table, a result
ready for the queue with what the change hooks derived from it, and consecutive results
merged into one shipment (pure; :mod:`streams.runtime.shipper` sends them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from streams.judge.result import BatchResult
from streams.rules.change import Change

#: State writes of a table: key -> (partition, encoded state or ``None``, a tombstone).
Writes = dict[bytes, tuple[int, bytes | None]]


class Record(NamedTuple):
    """A record a writer built itself (a CRM source's change event, keyed by its
    ``entity_id``): sent as it is, in order, acknowledged before the writer's ack."""

    topic: str
    key: bytes | None
    value: bytes


class ChangeHook(Protocol):
    """Derives records from accepted changes (KPI facts, owner-frequency hits), in two
    steps: :meth:`derive` when a result is queued (its changes are dropped afterwards),
    then :meth:`send`: by the send stage with the alerts of each shipment when ``prompt``
    (the records become alerts further on: owner-frequency hits), otherwise by the write
    stage, once for every shipment written together (fewer, larger messages: KPI facts).
    Either way they are acknowledged before the states that remember their changes."""

    #: sent with the alerts (``True``) or grouped in the write stage (``False``)
    prompt: bool

    def derive(self, changes: Sequence[Change]) -> Any:
        """What one result's changes give (pure: no I/O, no await)."""

    async def send(self, derived: Sequence[Any]) -> list[asyncio.Future[Any]]:
        """Send what :meth:`derive` gave for consecutive results (in queue order); the
        delivery futures, which the shipper awaits with the alerts'."""


@dataclass
class Queued:
    """A result ready for the queue (:meth:`Shipper.prepare`): counted, its changes turned
    into what each change hook sends."""

    result: BatchResult
    changelog: str | None  # None: the entity table's changelog
    ack: Callable[[], None]
    received: float
    records: Sequence[Record] = ()
    #: (hook, what it derived from the result's changes)
    derived: Sequence[tuple[ChangeHook, Any]] = ()
    #: its input records: what it counts against the shipper's outstanding bound
    weight: int = 1


@dataclass
class Shipment:
    """One or more queued results, merged in queue order."""

    result: BatchResult
    #: changelog topic -> the last write of each key (in the order the results wrote them)
    writes: dict[str, Writes] = field(default_factory=dict)
    #: the writers' own records, in queue order
    records: list[Record] = field(default_factory=list)


def merge(items: Sequence[tuple[BatchResult, str]]) -> Shipment:
    """Consecutive ``(result, changelog)`` as one shipment, in order: outputs concatenated,
    each record's last state kept per changelog (a later result saw the earlier one's
    states, so its write supersedes). Only the statistics the shipper still records (rule
    skips) are summed; the others were counted when each result was queued."""
    if len(items) == 1:
        result, changelog = items[0]
        return Shipment(result, {changelog: result.writes} if result.writes else {})
    merged = BatchResult()
    writes: dict[str, Writes] = {}
    for result, changelog in items:
        merged.alerts.extend(result.alerts)
        merged.dead.extend(result.dead)
        table = writes.setdefault(changelog, {})
        for key, write in result.writes.items():
            table.pop(key, None)  # re-inserted: the changelog order follows the results
            table[key] = write
        merged.due.update(result.due)
        merged.stats.skips.update(result.stats.skips)
    return Shipment(merged, {name: w for name, w in writes.items() if w})


def merge_writes(shipments: Sequence[Shipment]) -> dict[str, Writes]:
    """The changelog writes of consecutive shipments: the last state of each key per
    changelog, in the order the shipments wrote them (as :func:`merge` does)."""
    if len(shipments) == 1:
        return shipments[0].writes
    merged: dict[str, Writes] = {}
    for shipment in shipments:
        for changelog, writes in shipment.writes.items():
            table = merged.setdefault(changelog, {})
            for key, write in writes.items():
                table.pop(key, None)
                table[key] = write
    return merged


def apply_writes(data: Any, writes: Writes) -> None:
    """Apply new states to a table's in-memory data (the changelog follows, shipped)."""
    for key, (_, blob) in writes.items():
        if blob is None:  # the record leaves the hot state (retention)
            data.pop(key, None)
        else:
            data[key] = blob
