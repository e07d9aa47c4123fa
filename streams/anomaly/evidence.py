"""What an alert on the detector's last point shows, in the value's own units (pure)."""

from __future__ import annotations

from typing import Any

from streams.anomaly.counts import count_of
from streams.anomaly.season import SLOTS
from streams.anomaly.state import DetectorState


def band(det: DetectorState) -> tuple[float, float]:
    """Values of the last point's slot that would not have fired: expected +- z sd on the
    model's scale (the Anscombe scale for counts), brought back to the value's units."""
    half = det.band_z * det.sd_model
    if det.is_count:
        return count_of(det.expected_model - half), count_of(det.expected_model + half)
    low = det.expected_model - half
    return (max(low, 0.0) if det.nonneg else low), det.expected_model + half


def evidence(det: DetectorState) -> dict[str, Any]:
    """Expected value and band, deviation, robust z, sd, surprise (-log10 p), the component
    that fired on the last point and the open episode's, the count model, the profile; when
    the day totals fired (``day_*``): the day's value, expected value and band."""
    low, high = band(det)
    day: dict[str, Any] = {}
    if det.component is not None and det.component.startswith("day_") and det.day is not None:
        day_low, day_high = band(det.day)  # the day total that fired, and its band
        day = {"day_value": det.day.last_value, "day_expected": round(det.day.expected, 6),
               "day_band": [round(day_low, 6), round(day_high, 6)]}  # fmt: skip
    return {
        "expected": round(det.expected, 6),
        "band": [round(low, 6), round(high, 6)],
        "deviation": round(det.deviation, 6),
        "z": round(det.z_last, 4),
        "sd": round(det.sd_last, 6),
        "surprise": round(det.surprise, 4),
        "component": det.component,
        "episode_component": det.episode_component if det.active else None,
        "count_model": det.is_count,
        "season": season_name(det.period),
        **day,
    }


def season_name(period: int) -> str:
    for name, slots in SLOTS.items():
        if slots == period:
            return name
    return "undecided"
