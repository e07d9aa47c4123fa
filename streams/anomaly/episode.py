"""One anomaly, one alert: hysteresis and a cooldown over the detector's surprises (pure).

An episode opens when a point's surprise reaches the firing level and stays open until
``clear`` points in a row fall below the (lower) resolve level. After it closes, ``cooldown``
points hold back a new episode of the same *family* (rises, drops, flatlines): the tail of a
burst or the second half of a shift is not a new alert, while a feed going silent right after
a surge is, even while the surge's episode is still open (the new episode replaces it), and
so is a point ``ESCALATE`` decades beyond the last episode's peak during the cooldown.
"""

from __future__ import annotations

from typing import NamedTuple

#: Decades of surprise above the last episode's peak at which a point opens a new episode
#: even while the cooldown holds back its family: a far bigger anomaly right after a small
#: one is news (p 1000 times smaller than the last episode's most extreme point).
ESCALATE = 3.0


class Episode(NamedTuple):
    """Episode state after a point, and what the point did."""

    active: bool
    calm: int  # calm points in a row inside the open episode
    cool: int  # cooldown points left after the last episode closed
    component: str | None  # the component that opened the (last) episode
    onset: bool = False  # this point opened an episode
    suppressed: bool = False  # this point would have opened one: held back by the cooldown
    peak: float = 0.0  # largest surprise of the (last) episode


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
    peak = state.peak
    if active:
        if surprise >= fire and family(component) != family(current):
            return Episode(True, 0, cool, component, True, peak=surprise)  # another anomaly
        if surprise > peak:
            peak = surprise
        if surprise < resolve:
            calm += 1
            if calm >= clear:
                return Episode(False, calm, cooldown, current, peak=peak)
            return Episode(True, calm, cool, current, peak=peak)
        return Episode(True, 0, cool, current, peak=peak)
    if surprise >= fire:
        if (
            cool > 0
            and family(component) == family(current)
            and surprise < (peak if peak > fire else fire) + ESCALATE
        ):
            return Episode(False, calm, cool - 1, current, suppressed=True, peak=peak)
        return Episode(True, 0, cool, component, True, peak=surprise)
    return Episode(False, calm, cool - 1 if cool > 0 else 0, current, peak=peak)
