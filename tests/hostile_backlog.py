"""A backlog of mutated CRM events mixed with valid ones (seeded, reproducible).

Valid events come from the simulator over the days before ``now``; mutated ones are valid
events with bits flipped (anywhere, or in the digits of ``occurred_at``: wild years),
fields of another type (numbers as texts, lists, objects, huge or non-finite numbers),
``NaN`` tokens and deep nesting. Integers beyond 64 bits are left out (the engine's
input contract deals with them; this backlog is about what valid-looking data does to the
worker afterwards). Used by the memory test of the worker and by
``benchmarks/kpi_hostile_backlog.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson

from streams.simulator import DealSimulator

Message = tuple[bytes, bytes]

SWAPS: tuple[object, ...] = (
    "12",
    "abc",
    [1, 2],
    {"x": 1},
    None,
    True,
    2**63 - 1,
    1e18,
    1e30,
    -1e308,
    -5,
    "9999-12-31T23:59:59-12:00",
    "",
)
#: Values of SWAPS that crashed the KPI facts of the worker before they were made total.
POISON: tuple[object, ...] = (2**63 - 1, 1e18, 1e30, -1e308)
WILD_TIMES = (
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:59:59-12:00",
    "2099-06-01T00:00:00+00:00",
    "0001-01-01T00:00:00+00:00",
    "1969-12-31T23:59:59+00:00",
    "2426-03-02T09:00:00+00:00",
)


def valid_events(now: datetime, count: int, seed: int = 11, days: float = 3) -> list[Message]:
    """``count`` simulator events spread evenly over the ``days`` before ``now``."""
    sim = DealSimulator(seed=seed, dirty_rate=0.0)
    step = timedelta(days=days) / max(count, 1)
    return list(sim.stream(now - timedelta(days=days), step, count))


def flip_bits(rng: random.Random, value: bytes) -> bytes:
    data = bytearray(value)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def flip_date(rng: random.Random, value: bytes) -> bytes:
    start = value.find(b'"occurred_at":"')
    if start < 0:
        return flip_bits(rng, value)
    data = bytearray(value)
    digits = start + len(b'"occurred_at":"')
    i = digits + rng.randrange(4)  # a digit of the year
    data[i] = ord(str(rng.randrange(10)))
    if rng.random() < 0.5:
        data[i + rng.randrange(1, 3)] ^= 1 << rng.randrange(4)
    return bytes(data)


def _swap_type(rng: random.Random, value: bytes, poison: bool = True) -> bytes:
    event = orjson.loads(value)
    fields = event.get("fields") or {}
    targets = [("fields", k) for k in fields] + [("event", "owner_id"), ("event", "occurred_at")]
    where, name = rng.choice(targets)
    swapped = rng.choice(SWAPS if poison else [v for v in SWAPS if v not in POISON])
    if where == "fields":
        fields[name] = swapped
    else:
        event[name] = swapped
    if rng.random() < 0.3:
        event["occurred_at"] = rng.choice(WILD_TIMES)
    return orjson.dumps(event)


def _nan(rng: random.Random, value: bytes) -> bytes:
    event = orjson.loads(value)
    fields = event.setdefault("fields", {})
    fields["amount"] = 1.5
    text = orjson.dumps(event)
    return text.replace(b'"amount":1.5', rng.choice((b'"amount":NaN', b'"amount":Infinity')))


def _deep(rng: random.Random, value: bytes) -> bytes:
    depth = rng.choice((64, 200, 1000, 5000))
    event = orjson.loads(value)
    text = orjson.dumps(event)
    nested = b"[" * depth + b"1" + b"]" * depth
    return text.replace(b'"fields":{', b'"fields":{"deep":' + nested + b",", 1)


MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    flip_bits,
    flip_date,
    _swap_type,
    _nan,
    _deep,
)


def mutated_events(now: datetime, count: int, seed: int = 12, poison: bool = True) -> list[Message]:
    """``count`` mutated events (each mutation kind in turn) of simulator events;
    ``poison=False`` leaves out the :data:`POISON` values."""
    rng = random.Random(seed)
    base = valid_events(now, count, seed=seed)
    out: list[Message] = []
    for i, (key, value) in enumerate(base):
        mutate = MUTATIONS[i % len(MUTATIONS)]
        if mutate is _swap_type:
            out.append((key, _swap_type(rng, value, poison)))
        else:
            out.append((key, mutate(rng, value)))
    return out


def backlog(
    now: datetime, valid: int, mutated: int, seed: int = 13, poison: bool = True
) -> list[Message]:
    """``valid`` valid and ``mutated`` mutated events mixed at random places (seeded); the
    valid ones keep their order, as a CRM sends a record's changes (a shuffled stream would
    mostly be refused as out of order by the replay policy, and test that instead)."""
    rng = random.Random(seed)
    good = valid_events(now, valid)
    bad = mutated_events(now, mutated, poison=poison)
    slots = sorted(rng.sample(range(valid + mutated), mutated))
    messages: list[Message] = []
    gi = bi = 0
    for i in range(valid + mutated):
        if bi < len(slots) and slots[bi] == i:
            messages.append(bad[bi])
            bi += 1
        else:
            messages.append(good[gi])
            gi += 1
    return messages
