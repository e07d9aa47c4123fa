"""The worker's garbage-collector policy (streams.gc_policy)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.gc_policy import FULL_EVERY, OLDER_EVERY, apply_gc_policy, freeze_startup_objects
from streams.settings import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_the_setting_raises_the_young_thresholds(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    assert apply_gc_policy(Settings(gc_gen0_threshold=12_345)) == (12_345, OLDER_EVERY, FULL_EVERY)
    # the young generations' passes are rarer; full passes as often as Python's default
    assert gc.get_threshold() == (12_345, 100, 10)


def test_zero_keeps_pythons_thresholds(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    assert apply_gc_policy(Settings(gc_gen0_threshold=0)) == (700, 10, 10)


def test_the_default_is_read_from_the_environment(
    restore_gc: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_PULSE_GC_GEN0_THRESHOLD", "5000")
    assert apply_gc_policy(Settings())[0] == 5000


def test_startup_objects_are_frozen_and_cycles_still_collected(restore_gc: None) -> None:
    survivor = {"kept": True}
    frozen = freeze_startup_objects()
    assert frozen > 0 and frozen == gc.get_freeze_count()
    assert all(survivor is not o for o in gc.get_objects())  # out of the collector's reach

    class Node:
        peer: object

    a, b = Node(), Node()
    a.peer, b.peer = b, a  # a cycle made after the freeze is still garbage-collected
    del a, b
    assert gc.collect() >= 2
