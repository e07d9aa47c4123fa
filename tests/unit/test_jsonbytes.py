"""Table values are right-sized bytes, not orjson's 4 KiB output buffers."""

from __future__ import annotations

import tracemalloc

import orjson

from streams.jsonbytes import dumps_kept
from streams.judge.state import encode_dict
from streams.kpis.store import KpiStore

STATE = {"f": {"stage": "Proposal", "amount": 1200.0, "name": "x" * 100}, "ids": ["e1", "e2"]}


def _bytes_held(make: object, n: int = 200) -> float:
    """Bytes allocated per kept result of ``make()`` (tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = [make() for _ in range(n)]  # type: ignore[operator]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(kept) == n
    return sum(s.size_diff for s in after.compare_to(before, "lineno")) / n


def test_kept_json_is_the_same_json_in_a_buffer_of_its_own_size() -> None:
    blob = dumps_kept(STATE)
    assert blob == orjson.dumps(STATE) and orjson.loads(blob) == STATE
    assert _bytes_held(lambda: dumps_kept(STATE)) < 2 * len(blob) + 100


def test_entity_states_are_encoded_right_sized() -> None:
    assert _bytes_held(lambda: encode_dict(STATE)) < 1024  # orjson's own: about 4 KiB


def test_kpi_bucket_values_are_stored_right_sized() -> None:
    store = KpiStore({})
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(100):  # a day bucket and a meta value per scope
            store.apply(f"owner:o{i}", [[[0, i], 20000, [["n"]], {}]], late_before=0)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "lineno"))
    assert len(store.data) == 200
    assert held < 200 * 1024  # with orjson's buffers kept: over 200 x 4 KiB
