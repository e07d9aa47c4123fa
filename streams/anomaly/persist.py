"""The detector's learnt state as a JSON-ready dict, and back (pure).

Bounded size whatever the series length: at most 168 + 24 + 24 + 168 slot numbers, plus the
state of the day totals' detector of an hourly KPI (7 slots each). Version 3 learns counts on
the Anscombe scale (:mod:`.counts`); a version-2 state (counts learnt on
their own scale) and the previous EWMA detector's state (``n``, ``m``, ``v``) are read as a
level and a scale, converted where needed: the profile is learnt again.
"""

from __future__ import annotations

import math
from typing import Any

from streams.anomaly.counts import level_of
from streams.anomaly.season import SLOTS
from streams.anomaly.state import DetectorState

VERSION = 3


def dump(det: DetectorState) -> dict[str, Any]:
    return {
        "ver": VERSION, "n": det.n, "l": det.level, "s": det.scale, "p": det.period,
        "pf": det.prof, "ps": det.pscale, "pv": det.visits, "me": det.mend,
        "dp": det.dprof, "wv": det.wvisits,
        "st": det.steps, "c": det.is_count, "nn": det.nonneg, "t": det.last_ts,
        "x": det.last_value, "rr": det.rep_rate, "f": det.flat, "cp": det.cpos,
        "cn": det.cneg, "rn": det.run_n, "a": det.active,
        "ar": [det.rho, det.ar_xy, det.ar_xx, det.u_prev, det.r_prev],
        "ca": det.calm, "co": det.cool, "ec": det.episode_component, "pk": det.peak,
        "e": det.expected_model, "sd": det.sd_model,
        "di": det.day_index, "ds": det.day_sum, "dn": det.day_n,
        "dd": dump(det.day) if det.day is not None else None,
    }  # fmt: skip


def load(det: DetectorState, data: dict[str, Any]) -> DetectorState:
    """``det`` (fresh, configured) with the state ``data`` (the day totals' detector
    apart: :func:`day_state`)."""
    version = data.get("ver")
    if version not in (2, VERSION):  # the EWMA detector's state: a level and a scale
        scale = math.sqrt(max(float(data.get("v", 0.0)), 0.0))
        _level_and_scale(det, float(data.get("m", 0.0)), scale, int(data.get("n", 0)))
        det.last_ts = data.get("t")
        return det
    det.is_count = bool(data["c"]) and det.count != "no"
    det.nonneg = bool(data["nn"])
    det.last_ts, det.last_value = data["t"], data["x"]
    det.rep_rate, det.flat = float(data["rr"]), float(data["f"])
    det.active, det.calm, det.cool = bool(data["a"]), int(data["ca"]), int(data["co"])
    det.episode_component = data.get("ec")
    det.peak = float(data.get("pk", 0.0))
    det.expected_model, det.sd_model = float(data["e"]), float(data["sd"])
    if version == 2 and det.is_count:  # counts were learnt on their own scale
        _level_and_scale(det, float(data["l"]), float(data["s"]), int(data["n"]))
        return det
    det.n, det.level, det.scale = int(data["n"]), float(data["l"]), float(data["s"])
    period = int(data["p"])
    if period != det.period and (det.season == "auto" or period == SLOTS[det.season]):
        det.period = period
    if det.period == period:
        det.prof = [float(v) for v in data["pf"]]
        det.pscale = [float(v) for v in data["ps"]]
        det.visits = [int(v) for v in data["pv"]]
        det.dprof = [float(v) for v in data.get("dp", [])]
        det.wvisits = [int(v) for v in data.get("wv", [])]
        det.mend = [float(v) for v in data["me"]]
        det.steps = [float(v) for v in data["st"]]
        det.per_day()
    det.cpos, det.cneg = float(data["cp"]), float(data["cn"])
    det.run_n = int(data["rn"])
    lag = data.get("ar")  # absent from states written before the lag-1 correction
    if isinstance(lag, list) and len(lag) == 5:
        det.rho, det.ar_xy, det.ar_xx, det.u_prev, det.r_prev = (float(v) for v in lag)
    if version == VERSION:
        det.day_index, det.day_sum = int(data["di"]), float(data["ds"])
        det.day_n = int(data.get("dn", 0))
    return det


def day_state(data: dict[str, Any]) -> dict[str, Any] | None:
    """The state of the day totals' detector kept in ``data`` (None: none); the detector
    revives it with :func:`~.knobs.day_config` of its own knobs."""
    if data.get("ver") == VERSION and data.get("dd"):
        return dict(data["dd"])
    return None


def _level_and_scale(det: DetectorState, level: float, scale: float, n: int) -> None:
    """Keep a level and a scale learnt on the counts' own scale (or a plain one)."""
    det.n = n
    if det.is_count and level >= 0.0:
        det.level = level_of(level)
        det.scale = scale / math.sqrt(level + 0.375)
    else:
        det.level, det.scale = level, scale
        det.is_count = det.is_count and level >= 0.0
    det.expected_model, det.sd_model = det.level, det.scale
