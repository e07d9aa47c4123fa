"""The online KPI anomaly detector: seasonal, robust, change-point aware, O(1) per point.

API::

    detector = AnomalyDetector()             # defaults chosen on the anomaly harness
    for ts, value in series:
        score = detector.update(ts, value)   # in [0, 1], never exactly 1
        if detector.onset: ...               # this point opened an episode (one alert)
        detector.evidence()                  # expected, band, deviation, component...

Each point is scored against the model learnt *before* it, then learnt (docs/alerts.md,
"The anomaly detector", has the methods and their references):

* baseline ``level + profile[slot] (+ month end)``: additive Holt-Winters learnt online with
  Huber-clipped residuals (:mod:`.season` gives the slot); counts are modelled on the
  Anscombe scale (:mod:`.counts`), where their noise is close to a unit normal;
* scale: exponentially weighted mean absolute deviation of clipped residuals, global and per
  slot, never below the Poisson sd for counts;
* components, each a surprise ``-log10 p``: ``spike``/``dip`` (normal tail of the robust
  z-score), ``level_shift_up/down`` (two-sided CUSUM, a confirmed shift becomes the level),
  ``flatline`` (a run of zeros of a count series, or of a stuck value);
* score: :func:`~.calibration.score_of` of the largest surprise; episodes: :mod:`.episode`;
  state: :mod:`.persist`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streams.anomaly import episode, evidence, knobs, persist
from streams.anomaly.calibration import normal_surprise, score_of, surprise_of
from streams.anomaly.counts import Y0, count_of
from streams.anomaly.learn import SLOT_WARM, learn, learn_lag, leave_counts
from streams.anomaly.season import CYCLE, SLOTS, auto_season, month_ends, slot_of
from streams.anomaly.state import NO_DAY, DetectorState

#: Values beyond this magnitude are learnt as this (squares stay finite).
BIG = 1e150
#: Timestamps beyond +-10^11 s (year 5138) have no calendar slot.
BIG_TS = 1e11
#: Clip of the standardised residual fed to the CUSUM (a lone spike is the spike's job).
CUSUM_CLIP = 3.0
#: Smallest sd of a count on the Anscombe scale (1: a Poisson count).
COUNT_SD = 1.0
#: Points whose spacing decides ``season: auto``.
AUTO_POINTS = 12
_LN10 = math.log(10.0)
_POINT = ("spike", "dip", "level_shift_up", "level_shift_down", "flatline")
#: What can fire: on the points, and (``day_`` prefix) on the day totals of an hourly KPI.
COMPONENTS = _POINT + tuple(f"day_{c}" for c in _POINT)


@dataclass(slots=True)
class AnomalyDetector(DetectorState):
    """The detector: :class:`~.state.DetectorState` (knobs, learnt state) and the scoring."""

    def __post_init__(self) -> None:
        resolve = knobs.check(self)
        self.alpha_ = 1.0 - 0.5 ** (1.0 / self.half_life)
        self.gamma_ = 1.0 - 0.5 ** (1.0 / self.season_half_life)
        self._fire0 = surprise_of(self.threshold)
        self._resolve0 = surprise_of(max(resolve, 0.0))
        self.per_day()
        self._lr = 2.0 * self.shift_k / _LN10  # CUSUM statistic -> log10 likelihood ratio
        if self.period == 0 and self.season != "auto":
            self._set_period(SLOTS[self.season])
        if self.count == "no":
            self.is_count = False

    def _set_period(self, period: int) -> None:
        self.period = period
        if period > 1 and len(self.prof) != period:
            # hour_of_week: an hour-of-day profile (learnt 7x faster) plus weekly offsets;
            # scale and warm-up are kept per hour of day
            inner = 24 if period == 168 else period
            self.prof = [0.0] * period
            self.pscale = [0.0] * inner
            self.visits = [0] * inner
            self.dprof = [0.0] * 24 if period == 168 else []
            self.wvisits = [0] * 168 if period == 168 else []
        self.steps = []
        self.per_day()

    def _close_day(self) -> float:
        """Score the finished day's total (counts; the day's mean of other values); the
        surprise of a new day-level episode, on the hourly scale (0 unless one opened)."""
        day = self.day
        if not isinstance(day, AnomalyDetector):  # none yet (the state types it loosely)
            day = self.day = AnomalyDetector(**knobs.day_config(self))
        total = self.day_sum if self.is_count else self.day_sum / max(self.day_n, 1)
        day.update(self.day_index * 86400.0 - self.utc_offset_s, total)
        return day.surprise + self._fire_s - day._fire_s if day.onset else 0.0

    def sd(self) -> float:
        return self.sd_last if self.n > 1 else max(self.scale, self.min_abs_sd)

    def band(self) -> tuple[float, float]:
        """Values of the last point's slot that would not have fired: expected +- z sd."""
        return evidence.band(self)

    # ------------------------------------------------------------------ the hot path
    def update(self, ts: float, value: float) -> float:
        """Score ``value`` seen at epoch seconds ``ts`` against the model, then learn it.

        Non-finite values score 0 and are not learnt; the episode state does not move."""
        self.onset = False
        self.suppressed = False
        x = float(value)
        if not math.isfinite(x):
            self.component = None
            self.last_score = 0.0
            return 0.0
        if x > BIG:
            x = BIG
        elif x < -BIG:
            x = -BIG
        if not -BIG_TS < ts < BIG_TS:  # no calendar slot for it: the last known time
            ts = self.last_ts if self.last_ts is not None else 0.0
        if x < 0.0:
            self.nonneg = False
        if self.is_count and self.count == "auto" and (x < 0.0 or x != math.floor(x)):
            leave_counts(self)
        count = self.is_count
        y = (2.0 * math.sqrt(x + 0.375) if x > 0.0 else Y0) if count else x
        n = self.n
        if n == 0:
            self.n = 1
            self.level = self.expected_model = y
            self.last_ts = ts
            self.last_value = x
            self.last_score = 0.0
            return 0.0
        period = self.period
        if period == 0:  # season auto, not decided: gather the sampling steps
            last = self.last_ts
            if last is not None and ts > last:
                self.steps.append(ts - last)
            if len(self.steps) >= AUTO_POINTS:
                steps = sorted(self.steps)
                self._set_period(SLOTS[auto_season(steps[len(steps) // 2])])
                period = self.period
        local = ts + self.utc_offset_s
        slot = 0
        if period == 7:
            day = int(local // 86400.0)
            slot = (day + 3) % 7
        elif period > 1:
            slot = slot_of(period, local)
        seasonal = period > 1
        mslot = 0
        expected = self.level
        sslot = slot
        if seasonal:
            expected += self.prof[slot]
            if period == 168:
                sslot = slot % 24
                expected += self.dprof[sslot]
            elif period == 7:
                mslot = month_ends()[day % CYCLE]
                expected += self.mend[mslot]
        gscale = self.scale
        sd = gscale
        slot_visits = self.visits[sslot] if seasonal else SLOT_WARM
        if seasonal and slot_visits >= SLOT_WARM:
            sd = 0.5 * (gscale + self.pscale[sslot])
        if count:
            if expected < Y0:
                expected = Y0
            floor = COUNT_SD
        else:
            if self.nonneg and expected < 0.0:
                expected = 0.0
            floor = self.min_rel_sd * abs(expected)
            if floor < self.min_abs_sd:
                floor = self.min_abs_sd
        if sd < floor:
            sd = floor
        r = y - expected  # the residual the baseline learns
        rho = self.rho
        rs, sds = r, sd  # the residual scored: whitened of its lag-1 autocorrelation
        if rho > 0.0:
            rs = r - rho * self.r_prev
            sds = sd * math.sqrt(1.0 - rho * rho)
            if sds < floor:
                sds = floor
        z = (-rs if rs < 0.0 else rs) / sds
        scoring = n >= self.warmup and slot_visits >= SLOT_WARM
        if period == 168 and self.wvisits[slot] == 0:
            scoring = False  # this hour of the week was never seen
        direction = self.direction
        # ---- spike / dip
        best = 0.0
        comp: str | None = None
        if scoring and z > 0.0 and (direction == "both" or (direction == "up") == (rs > 0.0)):
            best = normal_surprise(z)
            comp = "spike" if rs > 0.0 else "dip"
        # ---- level shift (CUSUM of clipped standardised residuals)
        u = rs / sds
        if u > CUSUM_CLIP:
            u = CUSUM_CLIP
        elif u < -CUSUM_CLIP:
            u = -CUSUM_CLIP
        k = self.shift_k
        cpos = self.cpos + u - k
        cneg = self.cneg - u - k
        if cpos <= 0.0:
            cpos = 0.0
        if cneg <= 0.0:
            cneg = 0.0
        if cpos > 0.0 or cneg > 0.0:
            if (self.cpos == 0.0 and self.cneg == 0.0) or (cpos > 0.0) != (self.cpos > 0.0):
                self.run_n = 0
            self.run_n += 1
        else:
            self.run_n = 0
        self.cpos, self.cneg = cpos, cneg
        shift_up = cpos >= cneg
        c = cpos if shift_up else cneg
        if scoring and c > 0.0 and (direction == "both" or (direction == "up") == shift_up):
            s = c * self._lr
            if s > best:
                best = s
                comp = "level_shift_up" if shift_up else "level_shift_down"
        # ---- flatline (silent feed)
        if count:  # a silent count feed reads 0: -ln P(0) = expected count (Poisson) per point
            self.flat = self.flat + count_of(expected) if x == 0.0 else 0.0
        elif x == self.last_value:  # a stuck value: -ln P(repeat), the learnt repeat rate
            rate = self.rep_rate
            self.flat += -math.log(rate if rate > 0.01 else 0.01)
        else:
            self.flat = 0.0
        if scoring and self.flatline and direction != "up" and self.flat > 0.0:
            s = self.flat / _LN10
            if s > best:
                best = s
                comp = "flatline"
        # ---- hourly profiles: the day's total, scored by its own (daily) detector
        if seasonal and period != 7:
            today = int(local // 86400.0)
            if today > self.day_index:
                if self.day_index != NO_DAY:
                    s = self._close_day()
                    if s > best:
                        best = s
                        comp = "day_" + str(self.day.component if self.day else "")
                self.day_index, self.day_sum, self.day_n = today, 0.0, 0
            self.day_sum += x
            self.day_n += 1
        score = score_of(best)
        # ---- episode: hysteresis and cooldown
        if self.active or self.cool > 0 or best >= self._fire_s:  # else: nothing moves
            ep = episode.step(
                episode.Episode(
                    self.active, self.calm, self.cool, self.episode_component, peak=self.peak
                ),
                best, comp, self._fire_s, self._resolve_s, self.cooldown, self.clear,
            )  # fmt: skip
            self.active, self.calm, self.cool, self.episode_component = ep[:4]
            self.peak = ep.peak
            self.onset, self.suppressed = ep.onset, ep.suppressed
        # ---- a confirmed level shift becomes the new level: the CUSUM fired, lasted
        # shift_min_points, and this point still sits on the shifted side without being a
        # spike itself (a burst of spikes needs twice as long). Page's estimate of the new
        # mean (k + C / run, in sd; C of clipped residuals) bounds the move.
        if (
            scoring
            and c * self._lr >= self._fire_s
            and self.run_n >= self.shift_min_points
            and (u >= k if shift_up else u <= -k)
            and (-CUSUM_CLIP < u < CUSUM_CLIP or self.run_n >= 2 * self.shift_min_points)
        ):
            move = sd * (k + c / self.run_n)
            self.level += move if shift_up else -move
            self.cpos = self.cneg = 0.0
            self.run_n = 0
        learn_lag(self, r, sd)
        learn(self, x, r, sd, slot, sslot, mslot, slot_visits)
        self.last_ts = ts
        self.last_value = x
        self.expected_model, self.sd_model = expected + (r - rs), sds
        self.z_last = z if rs >= 0.0 else -z
        self.surprise = best
        self.component = comp
        self.last_score = score
        return score

    def score(self, value: float) -> float:
        """Score ``value`` as the next point, without learning it (a copy is updated)."""
        clone = AnomalyDetector.from_dict(self.to_dict(), **self.config())
        return clone.update(self.last_ts if self.last_ts is not None else 0.0, value)

    def evidence(self) -> dict[str, Any]:
        """What an alert on the last point shows (:func:`.evidence.evidence`)."""
        return evidence.evidence(self)

    def config(self) -> dict[str, Any]:
        return knobs.config_of(self)

    def to_dict(self) -> dict[str, Any]:
        """The learnt state, JSON-ready, of bounded size (:mod:`.persist`)."""
        return persist.dump(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, **config: Any) -> AnomalyDetector:
        """A detector with ``config`` and the state ``data`` (``None``: fresh)."""
        det = cls(**config)
        if not data:
            return det
        persist.load(det, data)
        day = persist.day_state(data)
        if day is not None:
            det.day = cls.from_dict(day, **knobs.day_config(det))
        return det
