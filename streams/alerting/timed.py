"""Timer-driven and KPI-driven judging, kept under these names for the agents: the logic is
the one judge's (:meth:`~streams.judge.logic.Judge.on_due_record`,
:meth:`~streams.judge.logic.Judge.on_due_series`, :meth:`~streams.judge.logic.Judge.on_point`)
and the batches are :mod:`streams.judge.batch`'s. Both return a
:class:`~streams.judge.result.BatchResult` the agents ship exactly like the ingest batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from streams.decode import RawRecord
from streams.judge import batch
from streams.judge.batch import KPI_PREFIX, series_key
from streams.judge.logic import Judge
from streams.judge.logic import judged_at as _judged_at
from streams.judge.result import BatchResult, StateLookup
from streams.judge.state import STATE_MAX_BYTES, EntityState, state_of
from streams.org import OrgDirectory
from streams.rules.ruleset import RuleSet

__all__ = ["KPI_PREFIX", "fire_due", "judged_at", "process_kpis", "series_key"]


def fire_due(
    rules: RuleSet,
    keys: Sequence[bytes],
    lookup: StateLookup,
    now: datetime,
    org: OrgDirectory,
    partitions: Collection[int] | None = None,
    state_max_bytes: int = STATE_MAX_BYTES,
) -> BatchResult:
    """Judge again the records/series whose deadline came (:func:`batch.judge_due`)."""
    judge = Judge(rules, BatchResult(), org=org)
    return batch.judge_due(judge, keys, lookup, now, partitions, state_max_bytes)


def process_kpis(
    rules: RuleSet, records: Sequence[RawRecord], lookup: StateLookup, now: datetime
) -> BatchResult:
    """KPI snapshots through the KPI rules watching them (:func:`batch.judge_points`)."""
    return batch.judge_points(Judge(rules, BatchResult()), records, lookup, now)


def judged_at(state: EntityState | Mapping[str, Any], now: datetime) -> datetime:
    """The time a due subject is judged at (:func:`streams.judge.logic.judged_at`)."""
    return _judged_at(state_of(state), now)
