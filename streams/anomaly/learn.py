"""Learning one point: the robust online Holt-Winters step of the detector (pure).

After a point is scored, its residual ``r`` (against the baseline before it) moves the level,
the scale and the point's calendar slot. Once warm, residuals are Huber-clipped at ``CLIP``
sd (robust exponential / Holt-Winters smoothing, Gelper, Fried & Croux 2010): one outlier
moves the baseline by a bounded amount. The level takes its share ``a`` of the clipped
residual and the slot learns the rest; the scale is an exponentially weighted mean absolute
deviation (x sqrt(pi/2): the sd of a normal), global and per slot. Under ``hour_of_week`` the
hour of the day learns first (seen 7 times as often), the hour of the week the remainder.
"""

from __future__ import annotations

from streams.anomaly.counts import count_of, count_sd
from streams.anomaly.state import DetectorState

#: Huber clip of residuals, in sd, for learning level, season and scale.
CLIP = 3.0
#: Mean absolute deviation -> sd of a normal.
MAD_TO_SD = 1.2533141373155
#: Clip (sd) of the residuals that estimate and carry the lag-1 autocorrelation.
AR_CLIP = 3.0
#: Largest lag-1 autocorrelation corrected (a random walk is left to the level).
AR_MAX = 0.9
#: Visits a slot needs before its points are scored.
SLOT_WARM = 2
#: Cap of the visit counters (they only matter while small).
MAX_VISITS = 1_000_000


def learn(
    det: DetectorState, x: float, r: float, sd: float, slot: int, sslot: int, mslot: int,
    slot_visits: int,
) -> None:  # fmt: skip
    """Learn the point ``x`` of residual ``r`` (model units) scored with ``sd`` in ``slot``
    (``sslot``: its scale and warm-up slot, ``mslot``: month end or not)."""
    n = det.n
    period = det.period
    seasonal = period > 1
    count = det.is_count
    gscale = det.scale
    limit = CLIP * sd
    rc = r
    if n >= det.warmup:
        if rc > limit:
            rc = limit
        elif rc < -limit:
            rc = -limit
    n += 1
    det.n = n
    a = det.alpha_
    if a * n < 1.0 and not seasonal:  # plain average until the season is decided
        a = 1.0 / n
    det.level += a * rc
    arc = -rc if rc < 0.0 else rc
    if gscale == 0.0 and n == 2:
        det.scale = arc * MAD_TO_SD
    else:
        det.scale = gscale + a * (arc * MAD_TO_SD - gscale)
    if seasonal:
        g = det.gamma_
        v = slot_visits + 1
        if g * v < 1.0:
            g = 1.0 / v
        det.visits[sslot] = v if v < MAX_VISITS else MAX_VISITS
        # the level took its share of the residual; the slot learns the rest
        rest = (1.0 - a) * (rc if slot_visits >= SLOT_WARM else r)
        if period == 168:
            det.dprof[sslot] += g * rest
            rest *= 1.0 - g
            wv = det.wvisits[slot] + 1
            det.wvisits[slot] = wv if wv < MAX_VISITS else MAX_VISITS
            g = det.gamma_ if det.gamma_ * wv >= 1.0 else 1.0 / wv
        det.prof[slot] += g * rest
        if period == 7:
            det.mend[mslot] += g * 0.25 * rest
        ps = det.pscale[sslot]
        det.pscale[sslot] = arc * MAD_TO_SD if v == 1 else ps + g * (arc * MAD_TO_SD - ps)
    if not count:  # the repeat rate only matters to the stuck-value flatline
        same = 1.0 if x == det.last_value else 0.0
        det.rep_rate += (a if a > 0.02 else 0.02) * (same - det.rep_rate)


def learn_lag(det: DetectorState, r: float, sd: float) -> None:
    """Learn the lag-1 autocorrelation ``rho`` of the standardised residuals (clipped at
    ``AR_CLIP``; exponentially weighted, the level's half-life) and keep this residual for
    the next point, which is scored whitened: ``r' = r - rho r_prev`` with sd
    ``sd sqrt(1 - rho^2)`` (the AR(1) prewhitening of residuals before a CUSUM: Lu &
    Reynolds 2001, *J. of Quality Technology* 33(3)). ``rho`` is kept in ``[0, AR_MAX]``."""
    u = r / sd
    if u > AR_CLIP:
        u = AR_CLIP
    elif u < -AR_CLIP:
        u = -AR_CLIP
    n = det.n
    w = det.alpha_ if det.alpha_ * n >= 1.0 else 1.0 / max(n, 1)
    det.ar_xy += w * (u * det.u_prev - det.ar_xy)
    det.ar_xx += w * (u * u - det.ar_xx)
    if n >= det.warmup and det.ar_xx > 0.0:
        rho = det.ar_xy / det.ar_xx
        det.rho = 0.0 if rho < 0.0 else (AR_MAX if rho > AR_MAX else rho)
    det.u_prev = u
    det.r_prev = u * sd


def leave_counts(det: DetectorState) -> None:
    """The series is not a count after all (a fraction, a negative value): the detector's
    model moves from the Anscombe scale to the values' own, what it learnt kept."""
    det.is_count = False
    base = count_of(det.level)
    det.scale = count_sd(det.scale, base)
    det.pscale = [count_sd(s, base) for s in det.pscale]
    for table in (det.prof, det.dprof, det.mend):
        table[:] = [count_of(det.level + p) - base for p in table]
    det.level = base
    det.cpos = det.cneg = det.flat = 0.0
    det.run_n = 0
    det.r_prev = 0.0  # the model's scale changed; rho (unitless) is kept
