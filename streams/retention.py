"""Retention of the hot state: which records leave the entity table, and when (pure).

A record leaves the table (its entry is deleted and a tombstone written to the changelog,
so a recovery never reads it again) when it is

* **closed**: a deal in a closed stage (``closed_stages``, Won/Lost), an activity or task
  whose ``status`` is a finished one (an activity without a status, a logged call, email or
  meeting, is finished once logged), or a deleted record; kept ``closed_s`` after its
  last change (30 days by default), so a reopen within that time is still seen as one;
* **untouched**: any other record without a change for ``untouched_s`` (180 days).

The age of a record is measured from the later of its last change's ``occurred_at`` and the
time that change was ingested (so replaying years-old history does not evict it at once).

Open alert episodes are never lost: a record whose retention expired with episodes still
open (a lost deal that never got its loss reason) has each of them closed by one RESOLVED
alert (``evidence.reason``: ``"record retired"``, ``resolved_at``: the moment its retention
expired, so a repeated sweep renders the same alert), shipped before the tombstone. Never
evicted: a record with a pending timer or reminder (its deadline lives in the state), a
record whose last applied input record is not yet committed (a catch-up replay must still
find its position), KPI rule series.

KPIs do not read the entity table: every change has already become day-bucket facts in the
KPI store (:mod:`streams.kpis.store`), which eviction does not touch, so an evicted deal
stays counted (won, lost, pipeline, cycle) where it was. An event that arrives later for an
evicted record meets an unknown record, as a first event does: an update merges over
nothing, rules that compare before/after see no ``before`` (no transition alert), condition
and required-fields rules judge the fields the event carries, and the KPI facts count it
as a new record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.judge.result import BatchResult
from streams.judge.state import decode_dict as decode_state
from streams.judge.state import state_of

RECORD_RETIRED = "record retired"

#: Statuses that finish a task or an activity (compared case-insensitively).
FINISHED_STATUSES: tuple[str, ...] = (
    "completed", "complete", "done", "closed", "cancelled", "canceled", "finished",
)  # fmt: skip
#: Keys of other state kinds kept in the entity table (KPI rule series): never evicted.
_NOT_RECORDS = (b"kpi:",)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    closed_s: float = 30 * 86400.0
    untouched_s: float = 180 * 86400.0
    closed_stages: tuple[str, ...] = ("Won", "Lost")
    finished_statuses: tuple[str, ...] = FINISHED_STATUSES

    @property
    def enabled(self) -> bool:
        return self.closed_s > 0 or self.untouched_s > 0


def is_closed(entity: str, state: Mapping[str, Any], policy: RetentionPolicy) -> bool:
    """Closed deal, finished activity/task, or deleted record."""
    if state.get("x"):
        return True
    fields = state.get("f") or {}
    if entity == "deal":
        return fields.get("stage") in policy.closed_stages
    if entity in ("activity", "task"):
        status = fields.get("status")
        if status is None:
            return entity == "activity"  # a logged call, email or meeting: done when logged
        return str(status).strip().lower() in policy.finished_statuses
    return False


def last_touched(state: Mapping[str, Any]) -> float | None:
    """When the record last changed: the later of event time and ingest time (epoch s)."""
    times = [float(state["u"])] if state.get("u") is not None else []
    applied = state.get("q")
    if applied and len(applied) > 2:
        times.append(float(applied[2]))
    return max(times, default=None)


def eviction_reason(
    key: bytes,
    state: Mapping[str, Any],
    now: float,
    policy: RetentionPolicy,
    committed: Mapping[int, int],
) -> str | None:
    """``"closed"`` or ``"untouched"`` when the record leaves the hot state now, else ``None``.

    ``committed``: input partition -> committed offset (the next offset a restart reads)."""
    if key.startswith(_NOT_RECORDS) or state_of(state).next_due() is not None:
        return None
    applied = state.get("q")
    if applied is not None and not int(applied[1]) < committed.get(int(applied[0]), -1):
        return None  # a replay from the committed offset would still meet this record
    touched = last_touched(state)
    if touched is None:
        return None
    age = now - touched
    entity = key.split(b":", 1)[0].decode(errors="replace")
    if policy.closed_s > 0 and age >= policy.closed_s and is_closed(entity, state, policy):
        return "closed"
    if policy.untouched_s > 0 and age >= policy.untouched_s:
        return "untouched"
    return None


def expired_at(state: Mapping[str, Any], reason: str, policy: RetentionPolicy) -> float:
    """When the retention of a record expired (epoch s): a function of its state."""
    touched = last_touched(state) or 0.0
    return touched + (policy.closed_s if reason == "closed" else policy.untouched_s)


def retire_episodes(key: bytes, state: Mapping[str, Any], at: float) -> list[AlertEvent]:
    """One RESOLVED alert per open episode of a record leaving the hot state."""
    entity, _, entity_id = key.decode(errors="replace").partition(":")
    subject = Subject(kind="entity", entity=entity, id=entity_id)
    alerts = []
    for rid, episode in sorted((state.get("a") or {}).items()):
        alerts.append(AlertEvent(
            alert_id=str(episode["id"]), status=AlertStatus.RESOLVED, rule_id=rid,
            rule_version=int(episode.get("rv") or 1),
            severity=Severity(episode.get("sv") or Severity.WARNING), subject=subject,
            owner_id=state.get("o"), escalated_to=episode.get("esc"),
            title=f"{rid}: {entity} {entity_id} retired",
            message=f"Alert closed: {entity} {entity_id} left the hot state (retention).",
            evidence={"reason": RECORD_RETIRED}, event_ids=[],
            fired_at=datetime.fromtimestamp(float(episode["at"]), tz=UTC),
            resolved_at=datetime.fromtimestamp(at, tz=UTC),
            sequence=int(episode["seq"]) + 1, reminders=int(episode.get("n", 0)),
        ))  # fmt: skip
    return alerts


@dataclass
class Sweep:
    """What one pass evicts: tombstone writes (``None`` states) and counts per reason."""

    result: BatchResult = field(default_factory=BatchResult)
    evicted: dict[str, int] = field(default_factory=dict)
    scanned: int = 0


def sweep(
    items: Iterable[tuple[bytes, bytes]],
    now: float,
    policy: RetentionPolicy,
    partitions: Mapping[int, int],
) -> Sweep:
    """Evictions among ``items`` (key, encoded state) of the owned ``partitions`` (partition
    -> committed offset); the result is shipped like any batch (tombstones, in order)."""
    out = Sweep()
    for key, blob in items:
        out.scanned += 1
        state = decode_state(blob)
        if state is None or state.get("p") not in partitions:
            continue
        reason = eviction_reason(key, state, now, policy, partitions)
        if reason is None:
            continue
        if state.get("a"):  # never lost: each open episode ends with a RESOLVED alert first
            at = expired_at(state, reason, policy)
            out.result.alerts.extend(retire_episodes(key, state, at))
        out.result.writes[key] = (int(state["p"]), None)
        out.result.due[key] = None
        out.evicted[reason] = out.evicted.get(reason, 0) + 1
    return out
