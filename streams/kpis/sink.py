"""The facts of one event, per group of scopes, as :mod:`streams.kpis.facts` collects them.

One fact per scope: ``[position, event day, flow items, {day: {component: delta}}]``;
``position`` is ``[partition, offset]`` of the input record (deduplication), or ``None``.
"""

from __future__ import annotations

from collections import defaultdict
from operator import add, sub
from typing import Any

from streams.kpis.needs import COMPONENTS, FactNeeds
from streams.kpis.windows import MAX_DAY, MIN_DAY

#: one event's facts in one scope (see the module docstring)
EventFacts = list[Any]

Scopes = tuple[str, ...]
#: per day, one running sum per :data:`COMPONENTS` slot
Slots = dict[int, list[int]]


class Sink:
    """Collects flow items and state deltas of one event, per group of scopes.

    The scopes of one owner (owner, team, region, global) get the same facts, so they are
    computed once per group and shared; only an owner change splits them per scope. State
    deltas are kept as slot lists (:data:`COMPONENTS`) and become ``{component: delta}``
    objects only for the components the catalog reads (:meth:`result`).
    """

    __slots__ = ("deltas", "flows", "last_day")

    def __init__(self, last_day: int = MAX_DAY) -> None:
        self.flows: dict[Scopes, list[list[Any]]] = {}
        self.deltas: dict[Scopes, Slots] = {}
        #: state deltas scheduled after this day are not kept (see :func:`extract`)
        self.last_day = min(last_day, MAX_DAY)

    def flow(self, group: Scopes, item: list[Any]) -> None:
        if group:
            items = self.flows.get(group)
            if items is None:
                self.flows[group] = [item]
            else:
                items.append(item)

    def delta(self, group: Scopes, day: int, comps: tuple[int, ...], sign: int) -> None:
        if not group or not MIN_DAY <= day <= self.last_day:
            return
        per_day = self.deltas.get(group)
        if per_day is None:
            per_day = self.deltas[group] = {}
        slots = per_day.get(day)
        if slots is None:
            per_day[day] = list(comps) if sign > 0 else [-v for v in comps]
        else:
            slots[:] = map(add if sign > 0 else sub, slots, comps)

    def moved(self, group: Scopes) -> bool:
        """Does this event move anything in ``group`` so far (a flow, a non-zero delta)?"""
        return group in self.flows or any(
            any(slots) for slots in self.deltas.get(group, {}).values()
        )

    def result(
        self, position: list[int] | None, day: int, needs: FactNeeds
    ) -> dict[str, EventFacts]:
        flows, deltas = self.flows, self.deltas
        if len(flows) <= 1 and len(deltas) <= 1:
            group = next(iter(flows or deltas), None)
            if group is None:
                return {}
            if (not flows or group in flows) and (not deltas or group in deltas):
                fact = _fact(position, day, flows.get(group, []), deltas.get(group, {}), needs)
                return dict.fromkeys(group, fact) if fact is not None else {}
        by_flow: dict[str, list[list[Any]]] = defaultdict(list)
        by_day: dict[str, Slots] = defaultdict(dict)
        for group, items in flows.items():
            for scope in group:
                by_flow[scope].extend(items)
        for group, per_day in deltas.items():
            for scope in group:
                target = by_day[scope]
                for d, slots in per_day.items():
                    into = target.get(d)
                    target[d] = list(slots) if into is None else list(map(add, into, slots))
        out: dict[str, EventFacts] = {}
        for scope in by_flow.keys() | by_day.keys():
            fact = _fact(position, day, by_flow.get(scope, []), by_day.get(scope, {}), needs)
            if fact is not None:
                out[scope] = fact
        return out


def _fact(
    position: list[int] | None,
    day: int,
    flows: list[list[Any]],
    per_day: Slots,
    needs: FactNeeds,
) -> EventFacts | None:
    """The fact of one scope, with what the catalog reads. An event that moves something
    the catalog does not read still gives an empty fact: it counts as the scope's latest
    input (freshness), its position is remembered (deduplication) and its day is a day of
    the scope, as with the full catalog, so every snapshot is the same."""
    kinds = needs.kinds
    kept = [item for item in flows if item[0] in kinds] if needs.partial else flows
    moved = bool(flows)
    deltas: dict[str, dict[str, int]] = {}
    for d, slots in per_day.items():
        comps = {COMPONENTS[i]: slots[i] for i in needs.slots if slots[i]}
        if comps:
            deltas[str(d)] = comps
        elif not moved and any(slots):
            moved = True
    if kept or deltas or moved:
        return [position, day, kept, deltas]
    return None
