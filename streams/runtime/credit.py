"""A weighted, first-come first-served gate: what bounds the work a writer may leave
outstanding with the shipper (in input records, not in results)."""

from __future__ import annotations

import asyncio
from collections import deque


class Credit:
    """At most ``limit`` units taken at once; :meth:`take` waits in arrival order (a taker
    that waits is never overtaken by a later one, even a smaller one). A take larger than
    the limit takes the whole limit, so it waits for everything else but never forever."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a credit limit is at least 1")
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.used + n <= self.limit

    async def take(self, n: int) -> int:
        """Wait until ``n`` units (at most the limit) are free, take them; returns the
        units taken, for :meth:`give`."""
        n = max(1, min(n, self.limit))
        if not self._waiters and self._fits(n):
            self.used += n
            return n
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.give(n)  # granted, then cancelled before it could be used
            else:
                self._waiters.remove((n, granted))
                self._grant()  # the next in line may fit now
            raise
        return n

    def give(self, n: int) -> None:
        """Give back ``n`` units taken before."""
        self.used -= n
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and self._fits(waiters[0][0]):
            n, granted = waiters.popleft()
            if granted.done():  # cancelled meanwhile
                continue
            self.used += n
            granted.set_result(None)
