"""The KPI path gives exactly the snapshots it gave before its speed work: two streams of
50,000 simulator events (``tests/unit/kpi_stream.py``) against the digests recorded on
the code before the change (every publication round, every scope's final snapshots, the
counters and the skips)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.kpi_stream import SPECS, load_reference, run_stream


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return load_reference()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_same_snapshots_as_recorded(spec: Any, reference: dict[str, Any]) -> None:
    expected = reference[spec.name]
    got = run_stream(spec)
    assert got["counters"] == expected["counters"]
    assert got["skips"] == expected["skips"]
    assert got["published"] == expected["published"]
    assert len(got["rounds"]) == len(expected["rounds"])
    for number, (mine, theirs) in enumerate(zip(got["rounds"], expected["rounds"], strict=True)):
        assert mine == theirs, f"publication round {number} differs"
    differing = sorted(s for s in expected["final"] if got["final"].get(s) != expected["final"][s])
    assert not differing and got["final"].keys() == expected["final"].keys(), differing[:10]


def test_the_reference_exercises_what_it_should(reference: dict[str, Any]) -> None:
    """The recorded streams are not trivial: many rounds and snapshots, late events,
    replayed facts, refused facts."""
    span = reference["span"]["counters"]
    assert span["late"] > 0 and span["duplicates"] > 0
    assert span["events_applied"] > 100_000  # facts per scope: owner, team, region, global
    assert sum(r[0] for r in reference["bench"]["rounds"]) > 10_000
    assert len(reference["span"]["rounds"]) >= 40
