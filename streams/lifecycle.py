"""Alert episodes: moved to :mod:`streams.judge.episodes` (this name is kept for callers)."""

from streams.judge.episodes import (
    AlertContext,
    Episode,
    ManagerOf,
    change_context,
    make_alert_id,
    remind,
    step,
    step_context,
)

__all__ = [
    "AlertContext", "Episode", "ManagerOf", "change_context", "make_alert_id", "remind",
    "step", "step_context",
]  # fmt: skip
