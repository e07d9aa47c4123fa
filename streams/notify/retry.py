"""Retry policy: exponential backoff with full jitter, and which failures are worth retrying."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Attempts in total (the first one included); after the last one the alert is dead-lettered.
    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait before attempt ``attempt + 1``: uniform in [0, min(cap, base * 2^(attempt-1))]."""
        ceiling = min(self.cap_s, self.base_s * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling)

    def gives_up_after(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


def retryable_status(status: int) -> bool:
    """5xx, 408 and 429 are transient; any other 4xx is the payload's fault and is not retried."""
    return status >= 500 or status in (408, 429)
