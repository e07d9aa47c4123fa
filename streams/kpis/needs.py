"""Which KPI facts a catalog reads: decided once per catalog load, from the declarations of
:data:`streams.kpis.compute.READS`, so that fact extraction ships and the KPI store
applies only those (a catalog of ``deals_won`` alone needs the ``w`` flow items only)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.kpis.compute import READS

#: State components of a deal's contribution, in the order of its slots.
COMPONENTS = ("deals", "complete", "open", "open_ok", "open_cents", "wcents", "stale")
#: State components derived from the deal's amount.
AMOUNT_COMPONENTS = frozenset({"open_ok", "open_cents", "wcents"})
#: What an open deal adds to the stale count from the day it becomes stale.
STALE = (0, 0, 0, 0, 0, 0, 1)
#: Flow item kind -> the :class:`~streams.kpis.compute.Flow` fields it feeds.
FLOW_KINDS = {
    "n": frozenset({"new"}),
    "w": frozenset({"won", "won_cents", "won_with_amount", "cycles"}),
    "l": frozenset({"lost"}),
    "t": frozenset({"transitions"}),
    "a": frozenset({"activities", "activity_owners"}),
    "r": frozenset({"responses"}),
}


@dataclass(frozen=True)
class FactNeeds:
    """The facts a KPI catalog reads, decided once per catalog load: flow item kinds, the
    won amount and cycle of ``w`` items, the state components (slots of
    :data:`COMPONENTS`). Extraction computes every fact (the same skips, the same
    "did this event move anything in this scope"), then keeps only these."""

    kinds: frozenset[str]
    won_cents: bool
    won_cycle: bool
    slots: tuple[int, ...]

    @property
    def partial(self) -> bool:
        return len(self.kinds) < len(FLOW_KINDS)

    @property
    def amounts(self) -> bool:
        """Does the catalog read the amounts of deals (open or weighted pipeline)? An
        unusable amount is noted only then (and, when won, if it reads won amounts)."""
        return any(COMPONENTS[i] in AMOUNT_COMPONENTS for i in self.slots)

    @classmethod
    def of(cls, kpi_ids: Iterable[str]) -> FactNeeds:
        flow: set[str] = set()
        state: set[str] = set()
        for kpi in kpi_ids:
            flow |= READS[kpi].flow
            state |= READS[kpi].state
        return cls(
            kinds=frozenset(kind for kind, fields in FLOW_KINDS.items() if fields & flow),
            won_cents=bool({"won_cents", "won_with_amount"} & flow),
            won_cycle="cycles" in flow,
            slots=tuple(i for i, comp in enumerate(COMPONENTS) if comp in state),
        )


#: Every fact (the full catalog).
ALL_FACTS = FactNeeds(frozenset(FLOW_KINDS), True, True, tuple(range(len(COMPONENTS))))
