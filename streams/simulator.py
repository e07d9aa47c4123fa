"""A realistic CRM change simulator: deals created, worked through the pipeline, edited,
won or lost, with the dirt real CRMs have (missing fields, typos, bad JSON).

:class:`DealSimulator` is pure (seeded RNG, explicit time) and yields
``(key, value_bytes)`` pairs; :func:`run` produces them to Kafka at a given rate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from streams.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("Prospecting", "Qualification", "Engaging", "Proposal", "Negotiation")
PRODUCTS = ("GTX Basic", "GTX Pro", "MG Special", "MG Advanced", "GTX Plus Pro", "GTK 500")
ACCOUNTS = (
    "Acme Corporation", "Betasoloin", "Cancity", "Dalttechnology", "Funholding", "Gogozoom",
    "Hottechi", "Inity", "Kan-code", "Lexiqvolax", "Mathtouch", "Nam-zim", "Ontomedia",
)  # fmt: skip


def default_owners(n: int = 24) -> list[str]:
    return [f"rep-{i:03d}" for i in range(1, n + 1)]


TEAMS_PER_REGION = 2
REPS_PER_TEAM = 6
REGIONS = ("West", "East", "North", "South")


def org_of(owner: str) -> tuple[str, str]:
    """The (team, region) of a simulated rep: six reps per team, two teams per region."""
    digits = "".join(c for c in owner if c.isdigit())
    index = (int(digits) - 1) if digits else 0
    team = index // REPS_PER_TEAM
    region = REGIONS[(team // TEAMS_PER_REGION) % len(REGIONS)]
    return f"team-{chr(ord('a') + team % 26)}", region


@dataclass
class _Deal:
    deal_id: str
    owner: str
    stage_index: int
    amount: float | None
    close_date: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DealSimulator:
    """Seeded generator of CRM change events.

    ``dirty_rate`` is the share of events carrying a data-quality problem; a few of those are
    not valid events at all (bad JSON, missing ``event_id``) and must reach the DLQ.
    """

    seed: int = 7
    owners: list[str] = field(default_factory=default_owners)
    open_deals_target: int = 200
    dirty_rate: float = 0.03
    source: str = "simulator"
    _rng: random.Random = field(init=False, repr=False)
    #: Share of events that log an activity, and that create or contact a lead.
    activity_rate: float = 0.08
    lead_rate: float = 0.04
    _deals: dict[str, _Deal] = field(default_factory=dict, init=False, repr=False)
    _leads: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _n: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _event(self, deal: _Deal, op: str, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
        self._n += 1
        return {
            "event_id": str(uuid.UUID(int=self._rng.getrandbits(128))),
            "source": self.source,
            "entity": "deal",
            "entity_id": deal.deal_id,
            "op": op,
            "occurred_at": at.isoformat(),
            "actor": deal.owner,
            "owner_id": deal.owner,
            "fields": fields,
            "changed": sorted(fields),
        }

    def _other(
        self, entity: str, entity_id: str, owner: str, op: str, fields: dict[str, Any],
        at: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        self._n += 1
        return {
            "event_id": str(uuid.UUID(int=self._rng.getrandbits(128))),
            "source": self.source, "entity": entity, "entity_id": entity_id, "op": op,
            "occurred_at": at.isoformat(), "actor": owner, "owner_id": owner,
            "fields": fields, "changed": sorted(fields),
        }  # fmt: skip

    def _activity(self, at: datetime) -> dict[str, Any]:
        """A call, email or meeting logged by an owner, usually on one of their deals."""
        rng = self._rng
        deal = self._deals[rng.choice(list(self._deals))] if self._deals else None
        owner = deal.owner if deal is not None else rng.choice(self.owners)
        fields: dict[str, Any] = {
            "type": rng.choice(("call", "email", "meeting")),
            "deal_id": deal.deal_id if deal is not None else None,
            "owner_id": owner,
        }
        return self._other("activity", f"A-{self._n:08d}", owner, "create", fields, at)

    def _lead(self, at: datetime) -> dict[str, Any]:
        """A new lead (status New), or a pending lead contacted (New -> Contacted)."""
        rng = self._rng
        if self._leads and rng.random() < 0.5:
            lead_id = rng.choice(list(self._leads))
            owner = self._leads.pop(lead_id)
            return self._other("lead", lead_id, owner, "update", {"status": "Contacted"}, at)
        lead_id, owner = f"L-{self._n:08d}", rng.choice(self.owners)
        self._leads[lead_id] = owner
        fields = {"status": "New", "company": rng.choice(ACCOUNTS), "owner_id": owner}
        return self._other("lead", lead_id, owner, "create", fields, at)

    def _create(self, at: datetime) -> dict[str, Any]:
        rng = self._rng
        deal_id = f"D-{self._n:07d}-{rng.randrange(1000):03d}"
        owner = rng.choice(self.owners)
        amount: float | None = round(rng.lognormvariate(8.5, 0.8), 2)
        close = at + timedelta(days=rng.randint(20, 120))
        deal = _Deal(deal_id, owner, 0, amount, close)
        fields: dict[str, Any] = {
            "name": f"{rng.choice(ACCOUNTS)} - {rng.choice(PRODUCTS)}",
            "stage": STAGES[0],
            "amount": amount,
            "close_date": close.date().isoformat(),
            "account": rng.choice(ACCOUNTS),
            "product": rng.choice(PRODUCTS),
            "next_step": "Discovery call",
            "owner_id": owner,
        }
        fields["team"], fields["region"] = org_of(owner)
        deal.fields = dict(fields)
        self._deals[deal_id] = deal
        return self._event(deal, "create", fields, at)

    def _update(self, deal: _Deal, at: datetime) -> dict[str, Any]:
        rng = self._rng
        roll = rng.random()
        fields: dict[str, Any]
        if roll < 0.45:  # move forward (or close)
            if deal.stage_index + 1 >= len(STAGES):
                won = rng.random() < 0.6
                fields = {"stage": "Won" if won else "Lost"}
                del self._deals[deal.deal_id]
            else:
                deal.stage_index += 1
                fields = {
                    "stage": STAGES[deal.stage_index],
                    "next_step": rng.choice(
                        ["Send proposal", "Demo", "Pricing review", "Legal review", "Follow-up"]
                    ),
                }
        elif roll < 0.55 and deal.stage_index > 0:  # backwards
            deal.stage_index -= rng.randint(1, deal.stage_index)
            fields = {"stage": STAGES[deal.stage_index]}
        elif roll < 0.75:  # amount edit, sometimes a fat finger (x10)
            base = deal.amount or 1000.0
            factor = 10.0 if rng.random() < 0.08 else rng.uniform(0.8, 1.3)
            deal.amount = round(base * factor, 2)
            fields = {"amount": deal.amount}
        elif roll < 0.87:  # close date pushed
            deal.close_date += timedelta(days=rng.randint(7, 45))
            fields = {"close_date": deal.close_date.date().isoformat()}
        elif roll < 0.93:  # lost early
            fields = {"stage": "Lost"}
            del self._deals[deal.deal_id]
        else:  # an activity logged as a field touch
            fields = {
                "last_activity": at.isoformat(),
                "next_step": rng.choice(["Call back", "Email sent", "Meeting booked"]),
            }
        if rng.random() < self.dirty_rate:
            dirt = rng.choice(("blank_next_step", "no_amount", "text_amount", "no_owner"))
            if dirt == "blank_next_step":
                fields["next_step"] = "  "
            elif dirt == "no_amount":
                fields["amount"] = None
            elif dirt == "text_amount":
                fields["amount"] = "tbd"
            else:
                fields["owner_id"] = ""
        deal.fields.update(fields)
        return self._event(deal, "update", fields, at)

    def next_event(self, at: datetime) -> tuple[bytes, bytes]:
        """One more change at time ``at``, as a Kafka ``(key, value)`` pair."""
        rng = self._rng
        if rng.random() < self.dirty_rate / 10:
            broken = rng.choice((b'{"event_id": "x", "entity": ', b'{"source": "simulator"}'))
            return b"broken", broken
        side = rng.random()
        if side < self.activity_rate:
            event = self._activity(at)
        elif side < self.activity_rate + self.lead_rate:
            event = self._lead(at)
        elif not self._deals or (len(self._deals) < self.open_deals_target and rng.random() < 0.35):
            event = self._create(at)
        else:
            deal = self._deals[rng.choice(list(self._deals))]
            event = self._update(deal, at)
        return event["entity_id"].encode(), orjson.dumps(event)

    def stream(self, start: datetime, step: timedelta, count: int) -> Iterator[tuple[bytes, bytes]]:
        at = start
        for _ in range(count):
            yield self.next_event(at)
            at += step


async def run(
    settings: Settings,
    topic: str,
    *,
    rate: float = 50.0,
    count: int | None = None,
    seed: int = 7,
    stop: asyncio.Event | None = None,
) -> int:
    """Produce simulated events to ``topic`` at ``rate`` events/s (``count`` or forever),
    on the brokers of ``settings``."""
    from streams.runtime.clients import new_producer

    sim = DealSimulator(seed=seed)
    producer = new_producer(settings, "simulator", linger_ms=5)
    await producer.start()
    sent = 0
    interval = 1.0 / rate if rate > 0 else 0.0
    try:
        while count is None or sent < count:
            if stop is not None and stop.is_set():
                break
            key, value = sim.next_event(datetime.now(UTC))
            await producer.send(topic, value=value, key=key)
            sent += 1
            if interval:
                await asyncio.sleep(interval)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
