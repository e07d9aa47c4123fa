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

Extraction is total: a change dated outside 1970-01-01 .. now + the future skew yields no
facts (``out_of_range``), an amount that is not a number in ``0 .. MAX_AMOUNT`` or a cycle
start that is not a date in range counts as missing, and a change whose extraction raises
anyway yields no facts (``processing_error``); each is noted in a :class:`Skips`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from streams.kpis.amounts import MAX_AMOUNT as MAX_AMOUNT
from streams.kpis.amounts import MAX_TEXT, is_blank, parse_cents, weighted_cents
from streams.kpis.amounts import to_cents as to_cents
from streams.kpis.catalog import Catalog, Params
from streams.kpis.directory import OrgDirectory
from streams.kpis.needs import ALL_FACTS, STALE, FactNeeds
from streams.kpis.sink import EventFacts, Sink
from streams.kpis.skips import Skips
from streams.kpis.windows import DAY_S, MAX_DAY, MIN_DAY, day_of, day_of_date, in_range
from streams.rules.change import Change
from streams.settings import DEFAULT_STAGE_ORDER

WON = "Won"
LOST = "Lost"
STAGE = "stage"
AMOUNT = "amount"
#: Stage name of a transition from or to a stage outside the pipeline (bounded dimension).
OTHER_STAGE = "(other)"
#: Longest owner id kept as a scope (scope keys are message keys and metric labels).
MAX_OWNER = 200

__all__ = ["ALL_FACTS", "EventFacts", "FactNeeds", "FactRules", "extract", "facts_by_scope"]


@dataclass(frozen=True)
class FactRules:
    """What fact extraction needs besides the change: catalog params, pipeline stages and
    the facts the catalog reads (every fact unless told)."""

    params: Params
    closed_stages: tuple[str, ...] = (WON, LOST)
    stage_order: tuple[str, ...] = DEFAULT_STAGE_ORDER
    needs: FactNeeds = ALL_FACTS

    @classmethod
    def of_catalog(
        cls,
        catalog: Catalog,
        closed_stages: tuple[str, ...] = (WON, LOST),
        stage_order: tuple[str, ...] = DEFAULT_STAGE_ORDER,
    ) -> FactRules:
        """The rules of ``catalog``, extracting only the facts its KPIs read."""
        return cls(catalog.params, closed_stages, stage_order, FactNeeds.of(catalog.ids))

    def known_stage(self, value: Any) -> str:
        """A stage as a transition end: itself when the pipeline knows it, else ``(other)``
        (a typo or hostile value must not create one KPI series per distinct text)."""
        if isinstance(value, str) and (
            value in self.stage_order
            or value in self.closed_stages
            or value in self.params.stage_probabilities
        ):
            return value
        return OTHER_STAGE


def day_of_ts(ts: Any) -> int | None:
    """The UTC day of epoch seconds, or ``None`` when not a finite number of a usable day."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return None
    if not MIN_DAY * DAY_S <= ts < (MAX_DAY + 1) * DAY_S:  # NaN fails this too
        return None
    return day_of(float(ts))


def to_day(value: Any) -> int | None:
    """A date or date-time field (ISO text or epoch seconds) as a UTC day number, or
    ``None`` when missing, not a date, or outside 1970-01-01 .. 9999-11-30."""
    if is_blank(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return day_of_ts(value)
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        return None
    try:
        text = value.strip()
        if len(text) == 10:
            day = day_of_date(date.fromisoformat(text))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                return None
            return day_of_ts(parsed.timestamp())
    except (ValueError, OverflowError):
        return None
    return day if in_range(day) else None


def owner_key(value: Any, skips: Skips | None = None) -> str | None:
    """An owner id as a scope id: text up to ``MAX_OWNER`` characters (a number becomes
    its text); anything else counts as no owner (``unusable_owner``)."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value) if abs(value) < 10**20 else None
    if isinstance(value, str) and len(value) <= MAX_OWNER:
        return value
    if skips is not None:
        skips.note("extract", "unusable_owner", type(value).__name__)
    return None


def deal_contribution(
    fields: Mapping[str, Any], rules: FactRules, skips: Skips | None = None
) -> tuple[int, ...]:
    """What one deal adds to the "at end of day" state of its scopes, one slot per
    :data:`COMPONENTS` entry (stale is scheduled apart: 0 here)."""
    params = rules.params
    complete = 1
    for name in params.required_fields:
        value = fields.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):  # is_blank
            complete = 0
            break
    stage = fields.get(STAGE)
    if stage in rules.closed_stages:
        return (1, complete, 0, 0, 0, 0, 0)
    cents, problem = parse_cents(fields.get(AMOUNT))
    if problem is not None and skips is not None:
        skips.note("extract", problem, "amount")
    if cents is None:
        return (1, complete, 1, 0, 0, 0, 0)
    prob = params.stage_probabilities.get(stage, 0.0) if isinstance(stage, str) else 0.0
    return (1, complete, 1, 1, cents, weighted_cents(cents, prob), 0)


def _deal(
    change: Change,
    rules: FactRules,
    directory: OrgDirectory,
    sink: Sink,
    skips: Skips,
    ts: float,
) -> None:
    params, needs = rules.params, rules.needs
    day = day_of(ts)
    before, after = change.before, change.after
    owner = owner_key(change.owner, skips)
    new_scopes = directory.scopes(owner)
    old_scopes = directory.scopes(owner_key(change.owner_before) or owner) if before else ()
    same = old_scopes == new_scopes
    # a catalog that reads no state component needs the deal's contribution only to know
    # whether the event moved anything in its scopes: asked last, when nothing else did
    lazy = not needs.slots and (before is None or same)
    if not lazy:
        _contributions(change, rules, sink, skips, day, old_scopes, new_scopes)
    was_open = before is not None and before.get(STAGE) not in rules.closed_stages
    is_open = after.get(STAGE) not in rules.closed_stages
    stale_from = day + params.stale_after_days
    if was_open:
        last = day_of_ts(change.last_seen) if change.last_seen is not None else None
        stale_was = max(day, (day if last is None else last) + params.stale_after_days)
        if not (same and is_open and stale_was == stale_from):
            sink.delta(old_scopes, stale_was, STALE, -1)
            if is_open:
                sink.delta(new_scopes, stale_from, STALE, +1)
    elif is_open:
        sink.delta(new_scopes, stale_from, STALE, +1)
    _deal_flows(change, rules, sink, skips, day, new_scopes)
    if lazy and not sink.moved(new_scopes):
        _contributions(change, rules, sink, skips, day, old_scopes, new_scopes)


def _contributions(
    change: Change,
    rules: FactRules,
    sink: Sink,
    skips: Skips,
    day: int,
    old_scopes: tuple[str, ...],
    new_scopes: tuple[str, ...],
) -> None:
    """The deal's contribution out of its old scopes and into its new ones (amount
    problems are noted only when the catalog reads amounts)."""
    before = change.before
    gone = deal_contribution(before, rules) if before is not None else None
    came = deal_contribution(change.after, rules, skips if rules.needs.amounts else None)
    if not (old_scopes == new_scopes and gone == came):  # the same in the same scopes: none
        if gone is not None:
            sink.delta(old_scopes, day, gone, -1)
        sink.delta(new_scopes, day, came, +1)


def _deal_flows(
    change: Change, rules: FactRules, sink: Sink, skips: Skips, day: int, scopes: tuple[str, ...]
) -> None:
    """New deal, stage transition, won (amount and cycle read only when the catalog does)
    and lost items."""
    params, needs = rules.params, rules.needs
    before, after = change.before, change.after
    if before is None:
        sink.flow(scopes, ["n"])
    old_stage = before.get(STAGE) if before is not None else None
    new_stage = after.get(STAGE)
    if new_stage == old_stage or is_blank(new_stage):
        return
    if old_stage is not None and not is_blank(old_stage):
        sink.flow(scopes, ["t", rules.known_stage(old_stage), rules.known_stage(new_stage)])
    if new_stage == WON:
        cycle = None
        if needs.won_cycle:
            start = None
            if params.cycle_start_field:
                raw = after.get(params.cycle_start_field)
                start = to_day(raw)
                if start is None and not is_blank(raw):
                    skips.note("extract", "unusable_date", params.cycle_start_field)
            if start is None and change.first_seen is not None:
                start = day_of_ts(change.first_seen)
            cycle = day - start if start is not None and start <= day else None
        cents = None
        if needs.won_cents:
            cents, problem = parse_cents(after.get(AMOUNT))
            if problem is not None:
                skips.note("extract", problem, "amount")
        sink.flow(scopes, ["w", cents, cycle])
    elif new_stage == LOST:
        sink.flow(scopes, ["l"])


def _lead(
    change: Change,
    rules: FactRules,
    directory: OrgDirectory,
    sink: Sink,
    skips: Skips,
    ts: float,
) -> None:
    params = rules.params
    field, new = params.lead_status_field, params.lead_new_status
    before = change.before
    if before is None or before.get(field) != new or change.after.get(field) == new:
        return
    started = change.first_seen
    if started is None or day_of_ts(started) is None:
        return
    seconds = ts - started
    if 0 <= seconds <= (MAX_DAY + 1) * DAY_S:
        sink.flow(directory.scopes(owner_key(change.owner, skips)), ["r", seconds])


def _activity(
    change: Change,
    rules: FactRules,
    directory: OrgDirectory,
    sink: Sink,
    skips: Skips,
    ts: float,
) -> None:
    if change.before is None:
        owner = owner_key(change.owner, skips)
        sink.flow(directory.scopes(owner), ["a", owner or ""])


EXTRACTORS: dict[str, Callable[[Change, FactRules, OrgDirectory, Sink, Skips, float], None]] = {
    "deal": _deal,
    "lead": _lead,
    "activity": _activity,
}


def extract(
    change: Change,
    rules: FactRules,
    directory: OrgDirectory,
    last_day: int = MAX_DAY,
    skips: Skips | None = None,
) -> dict[str, EventFacts]:
    """The facts one change contributes, per scope key (``kind:id``).

    ``last_day`` is the latest event day counted (the wall clock plus the future skew): a
    change dated after it, or before 1970-01-01, contributes nothing (``out_of_range``).
    State deltas it schedules later than ``last_day + stale_after_days`` (a staleness
    reset of a record last seen at such a date) are not kept either.
    """
    skips = skips if skips is not None else Skips()
    event = change.event
    extractor = EXTRACTORS.get(event.entity)  # a StrEnum: found by its text
    if extractor is None:
        return {}
    ts = event.epoch
    day = day_of_ts(ts)
    if day is None or not MIN_DAY <= day <= min(last_day, MAX_DAY):
        skips.note("extract", "out_of_range", event.occurred_at.isoformat())
        return {}
    stale_after = rules.params.stale_after_days
    sink = Sink(min(last_day, MAX_DAY - stale_after) + stale_after)
    extractor(change, rules, directory, sink, skips, ts)
    position = list(change.position) if change.position is not None else None
    return sink.result(position, day, rules.needs)


def batch_watermark(changes: Iterable[Change], latest: float) -> float | None:
    """The latest event time of ``changes`` that is at most ``latest`` (the clock plus the
    future skew): what a batch moves the KPI watermark to. A change dated later counts
    for nothing (its facts are refused), so one deal typed in 2099 moves nothing."""
    best: float | None = None
    for change in changes:
        try:
            t = change.event.epoch
        except (OverflowError, ValueError, AttributeError):
            continue
        if t <= latest and (best is None or t > best):
            best = t
    return best


def facts_by_scope(
    changes: Iterable[Change],
    rules: FactRules,
    directory: OrgDirectory,
    last_day: int = MAX_DAY,
    skips: Skips | None = None,
) -> dict[str, list[EventFacts]]:
    """Facts of a batch of changes grouped by scope (one Kafka message per scope). A change
    whose extraction raises contributes nothing and is noted (``processing_error``)."""
    skips = skips if skips is not None else Skips()
    out: dict[str, list[EventFacts]] = defaultdict(list)
    for change in changes:
        try:
            extracted = extract(change, rules, directory, last_day, skips)
        except Exception as exc:  # one change's facts, never the batch
            skips.note("extract", "processing_error", type(exc).__name__)
            continue
        for scope, facts in extracted.items():
            out[scope].append(facts)
    return dict(out)
