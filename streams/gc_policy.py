"""The worker's garbage-collector policy.

CPython runs a young-generation collection every 700 net container allocations (its
default). A batch of 2,000 events allocates hundreds of thousands of dicts and lists that
live until the batch is shipped, so each batch paid for dozens of collections that found
nothing to free and rescanned the batch's live objects each time. Raising the young
threshold (and the next generation's) keeps cyclic garbage collected, only less often.
Objects that live as long as the process (imported modules, the Faust app, compiled
rules) are frozen once at start so that no collection scans them again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from streams.settings import Settings

#: Collections of generation 0 between two of generation 1.
#: A young collection runs at the end of each batch, while the batch's results wait for the
#: shipper: the older generations would keep promoting those short-lived objects. At 10,
#: the generation-1 passes took a third of the collector's time at the benchmark's size
#: (0.35 s of 0.98 s per 100k events of the full pack); at 100, 0.02 s.
OLDER_EVERY = 100
#: Collections of generation 1 between two full ones (CPython's default): cyclic garbage
#: that reached the oldest generation is still freed every ~1,000 young collections.
FULL_EVERY = 10


def apply_gc_policy(settings: Settings) -> tuple[int, int, int]:
    """Set the collector's thresholds from ``settings``; returns the thresholds in force."""
    if settings.gc_gen0_threshold:
        gc.set_threshold(settings.gc_gen0_threshold, OLDER_EVERY, FULL_EVERY)
    return gc.get_threshold()


def freeze_startup_objects() -> int:
    """Collect once, then move every object alive now out of the collector's reach
    (``gc.freeze``). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No collector pass while a batch is judged; the passes it would have run happen as
    one afterwards (at the next allocation).

    A batch's objects (events, states, changes, alerts) live until it is shipped: every
    young collection during the batch scanned them again, and moved them on to be scanned
    again by the older generation's (about 8 % of the change path offline). Garbage without
    cycles is freed at once as always; the rare cycles wait for the end of the batch."""
    if not gc.isenabled():  # switched off by someone else: leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
