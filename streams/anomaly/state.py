"""The detector's knobs and learnt state (pure), below the modules that read and write it.

:class:`~streams.anomaly.detector.AnomalyDetector` is this state plus the scoring; the
detector's parts (:mod:`.counts`, :mod:`.evidence`, :mod:`.knobs`, :mod:`.learn`,
:mod:`.persist`) take a :class:`DetectorState`, so none of them imports the detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streams.anomaly.calibration import z_for_surprise
from streams.anomaly.counts import count_of, count_sd

#: log10(24): the stricter per-point threshold of hourly profiles.
HOURLY_DECADES = math.log10(24.0)
#: ``day_index`` before the first point.
NO_DAY = -(1 << 40)


@dataclass(slots=True)
class DetectorState:
    """The knobs and the learnt state of :class:`~streams.anomaly.detector.AnomalyDetector`
    (which adds the scoring), what its parts (:mod:`.counts`, :mod:`.evidence`,
    :mod:`.knobs`, :mod:`.learn`, :mod:`.persist`) read and write."""

    half_life: float = 60.0
    warmup: int = 20
    direction: str = "both"
    threshold: float = 0.995
    resolve: float | None = None
    season: str = "auto"
    season_half_life: float = 8.0
    count: str = "auto"
    shift_k: float = 1.25
    shift_min_points: int = 4
    flatline: bool = True
    cooldown: int = 10
    clear: int = 1
    utc_offset_s: float = 0.0
    min_rel_sd: float = 0.01
    min_abs_sd: float = 1e-9
    # ---- learnt state (model units: the Anscombe scale for counts)
    n: int = 0
    level: float = 0.0
    scale: float = 0.0
    period: int = 0  # slots of the profile; 0 = not decided yet (auto)
    prof: list[float] = field(default_factory=list)
    pscale: list[float] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    dprof: list[float] = field(default_factory=list)  # hour of day, under hour_of_week
    wvisits: list[int] = field(default_factory=list)
    mend: list[float] = field(default_factory=lambda: [0.0, 0.0])
    steps: list[float] = field(default_factory=list)
    is_count: bool = True
    nonneg: bool = True
    last_ts: float | None = None
    last_value: float | None = None
    rep_rate: float = 0.1
    flat: float = 0.0
    cpos: float = 0.0
    cneg: float = 0.0
    run_n: int = 0
    rho: float = 0.0  # lag-1 autocorrelation of the residuals (scored whitened)
    ar_xy: float = 0.0
    ar_xx: float = 0.0
    u_prev: float = 0.0
    r_prev: float = 0.0
    day: DetectorState | None = None  # hourly profiles: the detector of the day totals
    day_index: int = NO_DAY  # local day of the total being summed
    day_sum: float = 0.0
    day_n: int = 0
    active: bool = False
    calm: int = 0
    cool: int = 0
    episode_component: str | None = None
    peak: float = 0.0  # largest surprise of the (last) episode
    # ---- the last point, in the value's own units (what an alert shows)
    onset: bool = False
    suppressed: bool = False
    z_last: float = 0.0
    surprise: float = 0.0
    component: str | None = None
    last_score: float = 0.0
    expected_model: float = 0.0  # expected value and sd on the model's scale
    sd_model: float = 0.0
    alpha_: float = field(default=0.0, init=False, repr=False, compare=False)
    gamma_: float = field(default=0.0, init=False, repr=False, compare=False)
    _fire_s: float = field(default=0.0, init=False, repr=False, compare=False)
    _resolve_s: float = field(default=0.0, init=False, repr=False, compare=False)
    _fire0: float = field(default=0.0, init=False, repr=False, compare=False)
    _resolve0: float = field(default=0.0, init=False, repr=False, compare=False)
    band_z: float = field(default=0.0, init=False, repr=False, compare=False)
    _lr: float = field(default=0.0, init=False, repr=False, compare=False)

    def per_day(self) -> None:
        """Hourly profiles: the threshold is a false-alarm rate per *day* (24 points), so an
        hourly KPI does not alert 24 times as often as a daily one (Bonferroni)."""
        extra = HOURLY_DECADES if self.period in (24, 168) else 0.0
        self._fire_s = self._fire0 + extra
        self._resolve_s = self._resolve0 + extra
        self.band_z = z_for_surprise(self._fire_s)

    @property
    def alpha(self) -> float:
        """Weight of a new point in the level once warm: ``1 - 0.5 ** (1 / half_life)``."""
        return self.alpha_

    @property
    def warm(self) -> bool:
        return self.n >= self.warmup

    @property
    def mean(self) -> float:
        """The expected value of the last point scored (the level before any point)."""
        return self.expected

    @property
    def expected(self) -> float:
        """The expected value of the last point scored, in the value's units."""
        e = self.expected_model
        return count_of(e) if self.is_count else e

    @property
    def sd_last(self) -> float:
        """Its sd in the value's units (for counts: near the expected count)."""
        return count_sd(self.sd_model, self.expected) if self.is_count else self.sd_model

    @property
    def deviation(self) -> float:
        return (self.last_value or 0.0) - self.expected
