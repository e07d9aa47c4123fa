"""The latency timeline's buckets: the worst latency of the alerts of each slice of the
paced load, only where it is above the threshold, in time order."""

from __future__ import annotations

from benchmarks.report import slow_buckets


def test_slow_buckets_keep_the_worst_latency_of_each_slow_slice_in_time_order() -> None:
    rows = [(10.0, 40.0), (600.0, 900.0), (20.0, 150.0), (700.0, 120.0), (260.0, 99.0)]
    assert slow_buckets(rows, 250.0, 100.0) == [(0.0, 150.0), (0.5, 900.0)]


def test_no_slow_slice_gives_nothing() -> None:
    assert slow_buckets([(0.0, 20.0), (300.0, 100.0)], 250.0, 100.0) == []
