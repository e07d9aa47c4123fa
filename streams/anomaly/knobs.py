"""The detector's knobs: checked at construction, and the settings of its parts (pure)."""

from __future__ import annotations

from typing import Any

from streams.anomaly.season import SEASONS
from streams.anomaly.state import DetectorState

#: The day totals of an hourly KPI fire at this many times fewer false alarms than its
#: points (two tests on one series share the false-alarm budget).
DAY_RATE = 5.0


def check(det: DetectorState) -> float:
    """Fail fast on a bad knob, naming it; the resolve level (default: one decade below the
    threshold's ``1 - p``)."""
    if det.half_life <= 0:
        raise ValueError(f"half_life must be > 0, got {det.half_life}")
    if det.season_half_life <= 0:
        raise ValueError(f"season_half_life must be > 0, got {det.season_half_life}")
    if det.warmup < 2:
        raise ValueError(f"warmup must be >= 2, got {det.warmup}")
    if det.direction not in ("both", "up", "down"):
        raise ValueError(f"direction must be both, up or down, got {det.direction!r}")
    if det.season not in SEASONS:
        raise ValueError(f"season must be one of {', '.join(SEASONS)}, got {det.season!r}")
    if det.count not in ("auto", "yes", "no"):
        raise ValueError(f"count must be auto, yes or no, got {det.count!r}")
    if not 0.0 < det.threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {det.threshold}")
    resolve = det.resolve if det.resolve is not None else 1.0 - 10 * (1.0 - det.threshold)
    if not 0.0 <= resolve <= det.threshold:
        raise ValueError(f"resolve must be in [0, threshold], got {resolve}")
    if det.shift_k <= 0:
        raise ValueError(f"shift_k must be > 0, got {det.shift_k}")
    if det.cooldown < 0 or det.clear < 1 or det.shift_min_points < 1:
        raise ValueError("cooldown must be >= 0, clear and shift_min_points >= 1")
    return resolve


def config_of(det: DetectorState) -> dict[str, Any]:
    """The knobs of ``det`` (what :meth:`AnomalyDetector.from_dict` takes back)."""
    return {
        "half_life": det.half_life, "warmup": det.warmup, "direction": det.direction,
        "threshold": det.threshold, "resolve": det.resolve, "season": det.season,
        "season_half_life": det.season_half_life, "count": det.count,
        "shift_k": det.shift_k, "shift_min_points": det.shift_min_points,
        "flatline": det.flatline, "cooldown": det.cooldown, "clear": det.clear,
        "utc_offset_s": det.utc_offset_s, "min_rel_sd": det.min_rel_sd,
        "min_abs_sd": det.min_abs_sd,
    }  # fmt: skip


def day_config(det: DetectorState) -> dict[str, Any]:
    """Knobs of the detector of an hourly KPI's day totals: a weekly profile, the same
    knobs, a threshold ``DAY_RATE`` times stricter, no flatline (the hourly points watch
    silence hour by hour; on the tuning split a day-level flatline only added false alarms
    on real zero days)."""
    return {
        "threshold": 1.0 - (1.0 - det.threshold) / DAY_RATE, "direction": det.direction,
        "count": det.count, "flatline": False, "shift_k": det.shift_k,
        "half_life": det.half_life, "season": "day_of_week", "utc_offset_s": det.utc_offset_s,
        "min_rel_sd": det.min_rel_sd, "min_abs_sd": det.min_abs_sd,
    }  # fmt: skip
