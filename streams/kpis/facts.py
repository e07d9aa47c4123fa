"""KPI facts from entity changes: what one accepted change adds to each scope.

A fact list per scope and event: flow items (``["n"]`` new deal, ``["w", cents, cycle_days]``
won, ``["l"]`` lost, ``["t", from, to]`` stage change, ``["a", owner]`` activity,
``["r", seconds]`` lead response) that count on the event's day, and state deltas
``{day: {component: delta}}`` that move the "at end of day" state of the scope: the deal's
contribution before the change is taken out of the old owner's scopes, the contribution
after is added to the new owner's. Staleness is scheduled: an open deal last changed on day
``c`` counts as stale from day ``c + stale_after_days`` until its next change.

Only changes the engine accepted reach here: duplicates (same event_id) and no-op updates
never do; an update touching no KPI-relevant field yields only the staleness reset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from streams.kpis.catalog import Params
from streams.kpis.directory import OrgDirectory
from streams.kpis.windows import day_of, day_of_date
from streams.rules.change import Change

WON = "Won"
LOST = "Lost"
STAGE = "stage"
AMOUNT = "amount"

#: one event's facts in one scope: [position, event day, flow items, {day: {comp: delta}}];
#: ``position`` is ``[partition, offset]`` of the input record (deduplication), or ``None``.
EventFacts = list[Any]


@dataclass(frozen=True)
class FactRules:
    """What fact extraction needs besides the change: catalog params and pipeline stages."""

    params: Params
    closed_stages: tuple[str, ...] = (WON, LOST)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


#: Largest amount counted, in cents (10^15 money units): sums of many such amounts still fit
#: the 64-bit integers of the KPI buckets; a larger or non-finite amount is "not a number".
MAX_CENTS = 10**17


def to_cents(value: Any) -> int | None:
    """An amount as integer cents (half-even), or ``None`` when missing, not a number or
    beyond :data:`MAX_CENTS` (``1e30`` and ``-1e308`` included: never raises)."""
    if is_blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) > 100:
        return None
    try:
        dec = Decimal(str(value).strip())
        if not dec.is_finite() or abs(dec) > MAX_CENTS:  # compared before any rounding
            return None
        cents = int((dec * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except (InvalidOperation, ValueError):
        return None
    return cents if abs(cents) <= MAX_CENTS else None


#: Epoch seconds of 9999-12-31: a larger date field is not a date.
MAX_EPOCH_S = 253_402_300_799


def to_day(value: Any) -> int | None:
    """A date or date-time field (ISO text or epoch seconds) as a UTC day number."""
    if is_blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not -MAX_EPOCH_S <= value <= MAX_EPOCH_S:  # also NaN: never a day
            return None
        return day_of(float(value))
    try:
        text = str(value).strip()
        if len(text) == 10:
            return day_of_date(date.fromisoformat(text))
        return day_of(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def weighted_cents(cents: int, probability: float) -> int:
    exact = Decimal(cents) * Decimal(str(probability))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def deal_contribution(fields: Mapping[str, Any], rules: FactRules) -> dict[str, int]:
    """What one deal adds to the "at end of day" state of its scopes."""
    params = rules.params
    complete = all(not is_blank(fields.get(name)) for name in params.required_fields)
    contrib = {"deals": 1, "complete": int(complete)}
    stage = fields.get(STAGE)
    if stage not in rules.closed_stages:
        cents = to_cents(fields.get(AMOUNT))
        contrib["open"] = 1
        if cents is not None:
            contrib["open_ok"] = 1
            contrib["open_cents"] = cents
            prob = params.stage_probabilities.get(str(stage), 0.0)
            contrib["wcents"] = weighted_cents(cents, prob)
    return contrib


def _is_open(fields: Mapping[str, Any] | None, rules: FactRules) -> bool:
    return fields is not None and fields.get(STAGE) not in rules.closed_stages


Scopes = tuple[str, ...]


class _Sink:
    """Collects flow items and state deltas of one event, per group of scopes.

    The scopes of one owner (owner, team, region, global) get the same facts, so they are
    computed once per group and shared; only an owner change splits them per scope.
    """

    def __init__(self) -> None:
        self.flows: dict[Scopes, list[list[Any]]] = {}
        self.deltas: dict[Scopes, dict[int, dict[str, int]]] = {}

    def flow(self, scopes: Iterable[str], item: list[Any]) -> None:
        group = tuple(scopes)
        if group:
            self.flows.setdefault(group, []).append(item)

    def delta(self, scopes: Iterable[str], day: int, comps: Mapping[str, int], sign: int) -> None:
        group = tuple(scopes)
        if not group:
            return
        per_day = self.deltas.setdefault(group, {}).setdefault(day, {})
        for comp, value in comps.items():
            per_day[comp] = per_day.get(comp, 0) + sign * value

    def result(self, position: list[int] | None, day: int) -> dict[str, EventFacts]:
        groups = self.flows.keys() | self.deltas.keys()
        if len(groups) == 1:
            (group,) = groups
            fact = _fact(position, day, self.flows.get(group, []), self.deltas.get(group, {}))
            return dict.fromkeys(group, fact) if fact is not None else {}
        flows: dict[str, list[list[Any]]] = defaultdict(list)
        deltas: dict[str, dict[int, dict[str, int]]] = defaultdict(dict)
        for group, items in self.flows.items():
            for scope in group:
                flows[scope].extend(items)
        for group, per_day in self.deltas.items():
            for scope in group:
                target = deltas[scope]
                for d, comps in per_day.items():
                    into = target.setdefault(d, {})
                    for comp, value in comps.items():
                        into[comp] = into.get(comp, 0) + value
        out: dict[str, EventFacts] = {}
        for scope in flows.keys() | deltas.keys():
            fact = _fact(position, day, flows.get(scope, []), deltas.get(scope, {}))
            if fact is not None:
                out[scope] = fact
        return out


def _fact(
    position: list[int] | None,
    day: int,
    flows: list[list[Any]],
    per_day: Mapping[int, Mapping[str, int]],
) -> EventFacts | None:
    deltas: dict[str, dict[str, int]] = {}
    for d, comps in per_day.items():
        kept = {c: v for c, v in comps.items() if v}
        if kept:
            deltas[str(d)] = kept
    if not flows and not deltas:
        return None
    return [position, day, flows, deltas]


def _deal(change: Change, rules: FactRules, directory: OrgDirectory, sink: _Sink) -> None:
    params = rules.params
    ts = change.event.occurred_at.timestamp()
    day = day_of(ts)
    before, after = change.before, change.after
    new_scopes = directory.scopes(change.owner)
    old_scopes = directory.scopes(change.owner_before or change.owner) if before else ()
    if before is not None:
        sink.delta(old_scopes, day, deal_contribution(before, rules), -1)
        if _is_open(before, rules):
            last = day_of(change.last_seen) if change.last_seen is not None else day
            sink.delta(old_scopes, max(day, last + params.stale_after_days), {"stale": 1}, -1)
    sink.delta(new_scopes, day, deal_contribution(after, rules), +1)
    if _is_open(after, rules):
        sink.delta(new_scopes, day + params.stale_after_days, {"stale": 1}, +1)
    if before is None:
        sink.flow(new_scopes, ["n"])
    old_stage = before.get(STAGE) if before is not None else None
    new_stage = after.get(STAGE)
    if new_stage == old_stage or is_blank(new_stage):
        return
    if old_stage is not None and not is_blank(old_stage):
        sink.flow(new_scopes, ["t", str(old_stage), str(new_stage)])
    if new_stage == WON:
        start = to_day(after.get(params.cycle_start_field)) if params.cycle_start_field else None
        if start is None and change.first_seen is not None:
            start = day_of(change.first_seen)
        cycle = day - start if start is not None and start <= day else None
        sink.flow(new_scopes, ["w", to_cents(after.get(AMOUNT)), cycle])
    elif new_stage == LOST:
        sink.flow(new_scopes, ["l"])


def _lead(change: Change, rules: FactRules, directory: OrgDirectory, sink: _Sink) -> None:
    params = rules.params
    field, new = params.lead_status_field, params.lead_new_status
    before = change.before
    if before is None or before.get(field) != new or change.after.get(field) == new:
        return
    started = change.first_seen
    if started is None:
        return
    seconds = change.event.occurred_at.timestamp() - started
    if seconds >= 0:
        sink.flow(directory.scopes(change.owner), ["r", seconds])


def _activity(change: Change, rules: FactRules, directory: OrgDirectory, sink: _Sink) -> None:
    if change.before is None:
        sink.flow(directory.scopes(change.owner), ["a", change.owner or ""])


EXTRACTORS = {"deal": _deal, "lead": _lead, "activity": _activity}


def extract(change: Change, rules: FactRules, directory: OrgDirectory) -> dict[str, EventFacts]:
    """The facts one change contributes, per scope key (``kind:id``)."""
    extractor = EXTRACTORS.get(change.event.entity.value)
    if extractor is None:
        return {}
    sink = _Sink()
    extractor(change, rules, directory, sink)
    position = list(change.position) if change.position is not None else None
    return sink.result(position, day_of(change.event.occurred_at.timestamp()))


def facts_by_scope(
    changes: Iterable[Change], rules: FactRules, directory: OrgDirectory
) -> dict[str, list[EventFacts]]:
    """Facts of a batch of changes grouped by scope (one Kafka message per scope)."""
    out: dict[str, list[EventFacts]] = defaultdict(list)
    for change in changes:
        for scope, facts in extract(change, rules, directory).items():
            out[scope].append(facts)
    return dict(out)
