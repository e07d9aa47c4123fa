"""The shipper's credit gate: bounded, first come first served, cancel-safe."""

from __future__ import annotations

import asyncio

import pytest

from streams.runtime.credit import Credit


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_takes_within_the_limit_do_not_wait_and_a_give_lets_the_next_in() -> None:
    credit = Credit(10)
    assert await credit.take(4) == 4 and await credit.take(6) == 6
    waiting = asyncio.create_task(credit.take(3))
    await settle()
    assert not waiting.done() and credit.used == 10
    credit.give(4)
    await settle()
    assert waiting.done() and credit.used == 9


async def test_a_waiter_is_never_overtaken_by_a_later_smaller_take() -> None:
    credit = Credit(10)
    await credit.take(8)
    order: list[str] = []

    async def take(name: str, n: int) -> None:
        await credit.take(n)
        order.append(name)

    big = asyncio.create_task(take("big", 5))
    await settle()
    small = asyncio.create_task(take("small", 1))  # would fit now, but comes later
    await settle()
    assert order == []
    credit.give(8)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and credit.used == 6


async def test_a_take_over_the_limit_takes_the_whole_limit() -> None:
    credit = Credit(10)
    await credit.take(1)
    over = asyncio.create_task(credit.take(25))
    await settle()
    assert not over.done()
    credit.give(1)
    assert await over == 10 and credit.used == 10


async def test_a_cancelled_waiter_leaves_no_units_taken_and_lets_the_next_in() -> None:
    credit = Credit(4)
    await credit.take(4)
    first = asyncio.create_task(credit.take(3))
    second = asyncio.create_task(credit.take(1))
    await settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    credit.give(4)
    await settle()
    assert second.done() and credit.used == 1


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Credit(0)
