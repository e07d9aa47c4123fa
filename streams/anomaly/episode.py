"""One anomaly, one alert: hysteresis and a cooldown over the detector's surprises (pure).

An episode opens when a point's surprise reaches the firing level and stays open until
``clear`` points in a row fall below the (lower) resolve level. After it closes, ``cooldown``
points hold back a new episode of the same *family* (rises, drops, flatlines): the tail of a
burst or the second half of a shift is not a new alert, while a feed going silent right after
a surge is, even while the surge's episode is still open (the new episode replaces it).
"""

from __future__ import annotations

from typing import NamedTuple


class Episode(NamedTuple):
    """Episode state after a point, and what the point did."""

    active: bool
    calm: int  # calm points in a row inside the open episode
    cool: int  # cooldown points left after the last episode closed
    component: str | None  # the component that opened the (last) episode
    onset: bool = False  # this point opened an episode
    suppressed: bool = False  # this point would have opened one: held back by the cooldown


def family(component: str | None) -> str:
    """Rises, drops and flatlines are different anomalies: one does not hold back another."""
    if component is None:
        return ""
    if component.startswith("day_"):  # the day total of an hourly KPI
        component = component[4:]
    if component == "flatline":
        return "flat"
    return "up" if component in ("spike", "level_shift_up") else "down"


def step(
    state: Episode, surprise: float, component: str | None, fire: float, resolve: float,
    cooldown: int, clear: int,
) -> Episode:  # fmt: skip
    """The episode after a point of ``surprise`` (-log10 p) from ``component``."""
    active, calm, cool, current = state.active, state.calm, state.cool, state.component
    if active:
        if surprise >= fire and family(component) != family(current):
            return Episode(True, 0, cool, component, onset=True)  # another anomaly begins
        if surprise < resolve:
            calm += 1
            if calm >= clear:
                return Episode(False, calm, cooldown, current)
            return Episode(True, calm, cool, current)
        return Episode(True, 0, cool, current)
    if surprise >= fire:
        if cool > 0 and family(component) == family(current):
            return Episode(False, calm, cool - 1, current, suppressed=True)
        return Episode(True, 0, cool, component, onset=True)
    return Episode(False, calm, cool - 1 if cool > 0 else 0, current)
