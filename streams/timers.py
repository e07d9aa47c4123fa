"""The in-memory timer index of one worker: which record is due when (pure).

Due times live in the records' state (changelog-backed), so they survive restarts and
rebalances; this index is only a heap over them, rebuilt from the table after recovery and
updated after each state write. Lazy deletion: a key's latest due wins, stale heap entries
are skipped when popped.
"""

from __future__ import annotations

import heapq


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[float, bytes]] = []
        self._due: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: bytes, due: float | None) -> None:
        """Set (or clear, with ``None``) the next due time of ``key``."""
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))

    def pop_due(self, now: float, limit: int) -> list[bytes]:
        """Up to ``limit`` keys due at ``now`` (removed from the index)."""
        found: list[bytes] = []
        heap = self._heap
        while heap and len(found) < limit and heap[0][0] <= now:
            due, key = heapq.heappop(heap)
            if self._due.get(key) == due:
                del self._due[key]
                found.append(key)
        return found

    def next_due(self) -> float | None:
        return min(self._due.values(), default=None)

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()
