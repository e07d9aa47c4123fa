"""``frequency``: ``count`` matching changes within a sliding ``window`` for one key.

``per: record`` is judged here on each change of a record. State: ``{"ts": [epoch s, ...]}``
(at most ``count``).

``per: owner`` counts the matching changes of all the records of one owner: the worker
re-keys them by owner (:mod:`streams.judge.owner`) and :func:`tally` counts
them per (rule, owner). State: ``{"hits": [[epoch s, event id, record id], ...]}`` (not yet
counted in an alert), ``"ids": [[epoch s, event id], ...]`` (every event id counted within
the window, so a replayed event never counts twice), ``"m"`` (newest event time seen).

Each firing is a point episode; the counted changes are then cleared, so the next alert
needs ``count`` new matching changes. Windows are in event time (``occurred_at``), so a
replay gives the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.rules.cel_expr import CelExpression
from streams.rules.change import NOT_HOLDING, Change, Outcome
from streams.rules.model import FrequencyRule
from streams.rules.types.timing import iso

#: Event ids remembered per (rule, owner) within the window, beyond the pending ones.
MAX_IDS = 1000
#: Record ids listed in the evidence of an owner alert.
MAX_RECORDS = 20


def matches(rule: FrequencyRule, change: Change, guard: CelExpression | None) -> bool:
    """Whether this change counts for ``rule`` (its fields changed, its condition holds)."""
    if change.timer:
        return False
    if rule.fields is not None and not change.changed.intersection(rule.fields):
        return False
    return guard is None or guard.holds(change)


def evaluate(
    rule: FrequencyRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    if rule.per != "record" or not matches(rule, change, guard):
        return NOT_HOLDING  # per owner: counted on the owner's partition, not here
    ts = change.event.epoch
    horizon = ts - rule.window.total_seconds()
    recent = [t for t in state.get("ts", ()) if horizon < float(t) <= ts]
    recent.append(ts)
    recent = sorted(recent)[-rule.count :]
    if len(recent) < rule.count:
        return Outcome(holds=False, evidence={}, state={"ts": recent})
    evidence = {
        "count": len(recent), "window_s": rule.window.total_seconds(),
        "first_at": iso(recent[0]), "last_at": iso(recent[-1]),
    }  # fmt: skip
    return Outcome(holds=True, evidence=evidence, point=True, state={"ts": []})


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching change of one owner's record, as counted by a ``per: owner`` rule."""

    event_id: str
    ts: float  # event time, epoch s
    record: str  # entity id


@dataclass(frozen=True, slots=True)
class Tally:
    """What one hit did: ``outcome`` (holds: an alert), the new state, or a duplicate."""

    outcome: Outcome
    state: dict[str, Any]
    duplicate: bool = False
    #: The event ids counted in the alert (when it holds).
    event_ids: tuple[str, ...] = ()


def tally(rule: FrequencyRule, state: Mapping[str, Any], hit: Hit) -> Tally:
    """Count ``hit`` in the (rule, owner) ``state``: fires when ``count`` hits lie within one
    ``window`` of the newest hit seen (event time; hits may arrive in any order, a hit older
    than that window is not counted). Pure; a hit whose event id was already counted changes
    nothing (``duplicate``)."""
    window = rule.window.total_seconds()
    ids: list[list[Any]] = [list(x) for x in state.get("ids", ())]
    if any(x[1] == hit.event_id for x in ids):
        return Tally(NOT_HOLDING, dict(state), duplicate=True)
    newest = max(float(state.get("m", hit.ts)), hit.ts)
    horizon = newest - window
    if hit.ts <= horizon:  # older than anything countable: remembered, never counted
        kept = [x for x in ids if float(x[0]) > horizon]
        kept.append([hit.ts, hit.event_id])
        return Tally(NOT_HOLDING, {**_pending(state), "ids": _cap(kept), "m": newest})
    hits = [list(x) for x in state.get("hits", ()) if float(x[0]) > horizon]
    hits.append([hit.ts, hit.event_id, hit.record])
    hits.sort(key=lambda x: (float(x[0]), str(x[1])))
    ids = [x for x in ids if float(x[0]) > horizon]
    ids.append([hit.ts, hit.event_id])
    if len(hits) < rule.count:  # every kept hit lies within one window of the newest
        new_state = {"hits": hits, "ids": _cap(ids), "m": newest}
        return Tally(Outcome(holds=False, evidence={}), new_state)
    group = hits
    records = sorted({str(x[2]) for x in group})
    evidence = {
        "count": len(group), "window_s": window,
        "first_at": iso(float(group[0][0])), "last_at": iso(float(group[-1][0])),
        "records": records[:MAX_RECORDS], "distinct_records": len(records),
        "records_text": ", ".join(records[:MAX_RECORDS]),
    }  # fmt: skip
    return Tally(
        Outcome(holds=True, evidence=evidence, point=True),
        {"ids": _cap(ids), "m": newest},
        event_ids=tuple(str(x[1]) for x in group),
    )


def _pending(state: Mapping[str, Any]) -> dict[str, Any]:
    return {"hits": [list(x) for x in state["hits"]]} if state.get("hits") else {}


def _cap(ids: list[list[Any]]) -> list[list[Any]]:
    return sorted(ids, key=lambda x: float(x[0]))[-MAX_IDS:]


def possible(rule: FrequencyRule, guard: CelExpression | None) -> Callable[[Change], bool]:
    """Only a matching change counts on the record (per-owner rules count elsewhere)."""
    per_record = rule.per == "record"

    def check(change: Change) -> bool:
        return per_record and matches(rule, change, guard)

    return check
