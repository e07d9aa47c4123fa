"""The change path of the worker, kept under this name for its callers: the logic lives in
:mod:`streams.judge` (:class:`~streams.judge.batch.Engine` feeds raw records through the
one per-record :class:`~streams.judge.logic.Judge`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.judge.batch import PROCESSING_ERROR, ChangeCheck, Engine, safe_next_due, stage_of
from streams.judge.result import BatchResult, BatchStats, StateLookup, ThrottledLog
from streams.judge.state import EntityState, state_of

__all__ = [
    "PROCESSING_ERROR", "BatchResult", "BatchStats", "ChangeCheck", "Engine", "StateLookup",
    "ThrottledLog", "next_due", "safe_next_due", "stage_of",
]  # fmt: skip


def next_due(state: EntityState | Mapping[str, Any]) -> float | None:
    """Earliest timer deadline of a subject's state (typed, or its stored form)."""
    return state_of(state).next_due()
