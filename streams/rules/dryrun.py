"""``crm-pulse rules test``: moved to :mod:`streams.judge.dryrun` (name kept for callers)."""

from streams.judge.dryrun import DryRun, run_events

__all__ = ["DryRun", "run_events"]
