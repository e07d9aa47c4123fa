"""The judge: one pure per-subject logic for changes, due timers and KPI points, over a typed
entity state, with one isolation of rule errors and one batch result.

- :mod:`.state`: :class:`EntityState` and its one codec (the changelog's short keys);
- :mod:`.logic`: :class:`Judge` (``on_change``, ``on_due_record``, ``on_due_series``,
  ``on_point``, ``next_due``);
- :mod:`.result`: :class:`BatchResult`, :func:`~.result.rule_failed`;
- :mod:`.batch`: batches of raw changes, due keys and KPI snapshots, and :class:`Engine`;
- :mod:`.episodes`: alert episodes; :mod:`.retire`: episodes of retired rules;
- :mod:`.owner`: owner-scoped frequency counting; :mod:`.dryrun`: ``crm-pulse rules test``.

Pure: never imports Faust, aiokafka, the agents or the runtime.
"""

from streams.judge.batch import Engine, judge_changes, judge_due, judge_points
from streams.judge.logic import Judge
from streams.judge.result import BatchResult, BatchStats, rule_failed
from streams.judge.state import EntityState

__all__ = [
    "BatchResult", "BatchStats", "Engine", "EntityState", "Judge", "judge_changes",
    "judge_due", "judge_points", "rule_failed",
]  # fmt: skip
