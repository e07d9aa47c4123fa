"""The oracle of the anomaly harness: a yardstick, never a candidate (pure).

It knows what no online detector can: each series' *clean* (pre-injection) expected value
and its noise model, and it may look at the whole clean series. Each point gets the largest
surprise (``-log10 p``) of a few exact tests under that true model:

* the point itself: two-sided tail of the count (Poisson or negative binomial) or of the
  Gaussian innovation (the AR(1) value series), mid-p for counts;
* the sum of the last ``w`` points (shifts, trends, dips of several points): the tail of the
  sum, a negative binomial of the same mean and variance (Poisson when not over-dispersed);
* Fisher's combination of the last ``w`` points' mid-p values (shape changes: a seasonality
  break moves points both ways): ``chi^2`` with ``2w`` degrees of freedom.

Windows: 3, 7 and 21 points (daily), 8, 24 and 72 (hourly). An alarm is a point at or above
the threshold with none in the ``grace`` points before it. The threshold is set so that the
oracle's false alarms per series-month equal a given budget (the new detector's), so its
recall per kind says which injected anomalies are detectable at all at that budget.

The true model per series (:func:`model_of`):

* synthetic counts: the generator's own mean; daily ones are gamma-Poisson with shape 8
  (negative binomial, ``var = mu + mu^2 / 8``), hourly ones Poisson;
* the synthetic AR(1) value series: ``e_t = x_t / L_t - 1`` with ``e_t = 0.7 e_(t-1) + N(0,
  0.03^2)``, scored on its innovations given the previous observed point; a repeated value
  (probability 0 for continuous noise) has the cap surprise;
* Maven daily counts (real data, no generator): the mean is the clean series' centred
  4-week mean (the point itself excluded) times its weekday's factor (learnt on the whole
  clean series); the dispersion the series' own (method of moments on the clean series);
* Maven hourly counts: the day's mean above, spread by the harness's hour profile (the
  generator), with the day's dispersion (one gamma draw shared by the day's hours); nights
  are 0.

The *causal* oracle differs only on the Maven series: their mean comes from the 4 weeks of
the clean series before the point (what an online baseline could know at best, without
the injections), so it does not know the sample's real drifts in advance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from benchmarks.anomaly_series import HOUR_PROFILE, Series

#: Largest surprise reported (a count where the model says none is possible).
CAP = 50.0
#: Above this mean, count tails use the normal approximation (continuity-corrected).
EXACT_MEAN = 150.0
_LN10 = math.log(10.0)
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Model:
    """The true model of one series: per-point mean, and shape ``r`` of the negative
    binomial (``inf``: Poisson); ``gauss``: the AR(1) value model (then ``mu`` is ``L_t``)."""

    mu: list[float]
    r: float = math.inf
    gauss: bool = False
    #: points that share one day's gamma draw (24: hours spread from one daily count), or 0
    group: int = 0


# ---------------------------------------------------------------- tails
def _log_pmf(k: int, mu: float, r: float) -> float:
    if r == math.inf:
        return k * math.log(mu) - mu - math.lgamma(k + 1)
    return (
        math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1)
        + r * math.log(r / (r + mu)) + k * math.log(mu / (r + mu))
    )  # fmt: skip


def count_tails(x: int, mu: float, r: float) -> tuple[float, float]:
    """``(P(X < x) + P(X = x) / 2, P(X > x) + P(X = x) / 2)``: the mid-p lower and upper
    tails of a count ``x`` under a negative binomial of mean ``mu`` and shape ``r``."""
    if mu <= 0.0:
        return (1.0, 0.0) if x > 0 else (0.5, 0.5)
    if mu > EXACT_MEAN:
        var = mu + (mu * mu / r if r != math.inf else 0.0)
        sd = math.sqrt(var)
        lo = 0.5 * math.erfc(-((x - mu) / sd) / _SQRT2)  # P(X <= x) by continuity
        up = 0.5 * math.erfc(((x - mu) / sd) / _SQRT2)
        return lo, up
    pmf_x = math.exp(_log_pmf(x, mu, r))
    below = 0.0
    for k in range(x):
        below += math.exp(_log_pmf(k, mu, r))
    below = min(below, 1.0)
    above = max(1.0 - below - pmf_x, 0.0)
    if above < 1e-12:  # 1 - below loses the far upper tail: sum it
        above = 0.0
        k = x + 1
        term = math.exp(_log_pmf(k, mu, r))
        while term > above * 1e-16 and term > 0.0 and k < x + 2000:
            above += term
            k += 1
            term = math.exp(_log_pmf(k, mu, r))
    return below + 0.5 * pmf_x, above + 0.5 * pmf_x


def _surprise(p: float) -> float:
    return CAP if p <= 10.0**-CAP else min(-math.log10(p), CAP)


def two_sided(lo: float, up: float) -> float:
    return _surprise(min(1.0, 2.0 * min(lo, up)))


def chi2_even_tail(t: float, w: int) -> float:
    """``P(chi^2 with 2w degrees of freedom > t)``: ``e^(-t/2) sum_(k<w) (t/2)^k / k!``."""
    half = t / 2.0
    if half <= 0.0:
        return 1.0
    log_term = -half
    best = -math.inf
    terms = []
    for k in range(w):
        if k:
            log_term += math.log(half) - math.log(k)
        terms.append(log_term)
        best = max(best, log_term)
    total = sum(math.exp(t_ - best) for t_ in terms)
    return min(1.0, math.exp(best) * total)


# ---------------------------------------------------------------- the true models
def _maven_mu(clean: Sequence[float], ts: Sequence[float], causal: bool = False) -> list[float]:
    """Mean of a Maven daily count: the clean series' centred 4-week mean (the point itself
    excluded; ``causal``: the 4 weeks before it) times its weekday's factor over the whole
    series."""
    n = len(clean)
    smooth = []
    for i in range(n):
        lo, hi = (i - 28, i) if causal else (i - 14, i + 15)
        near = [clean[j] for j in range(max(0, lo), min(n, hi)) if j != i]
        smooth.append(sum(near) / len(near) if near else clean[i])
    days = [datetime.fromtimestamp(t, UTC).weekday() for t in ts]
    top = [0.0] * 7
    bottom = [0.0] * 7
    for x, m, d in zip(clean, smooth, days, strict=True):
        top[d] += x
        bottom[d] += m
    factor = [top[d] / bottom[d] if bottom[d] > 0.0 else 1.0 for d in range(7)]
    return [m * factor[d] for m, d in zip(smooth, days, strict=True)]


def _dispersion(clean: Sequence[float], mu: Sequence[float], first: int) -> float:
    """Shape ``r`` of a negative binomial by moments (``inf``: no over-dispersion);
    the residual variance is corrected for the 27-point mean's own variance."""
    excess, square = 0.0, 0.0
    for x, m in zip(clean[first:], mu[first:], strict=True):
        excess += (x - m) ** 2 * 27.0 / 28.0 - m
        square += m * m
    return square / excess if excess > 0.0 and square > 0.0 else math.inf


def _syn_daily_mu(name: str, ts: Sequence[float]) -> list[float]:
    mean = 8.0 if "syn_daily_counts" in name else 2.5
    start = datetime.fromtimestamp(ts[0], UTC).date()
    out = []
    for i in range(len(ts)):
        day = start + timedelta(days=i)
        lam = mean * (1.0 + 0.2 * i / 365.0)
        lam *= 0.2 if day.weekday() >= 5 else (1.3 if day.weekday() == 0 else 1.0)
        lam *= 1.8 if (day + timedelta(days=3)).month != day.month else 1.0
        out.append(lam)
    return out


def _syn_hourly_mu(name: str, ts: Sequence[float]) -> list[float]:
    busy = 4.0 if "syn_hourly_counts" in name else 1.2
    out = []
    for at in ts:
        moment = datetime.fromtimestamp(at, UTC)
        working = moment.weekday() < 5 and 9 <= moment.hour < 18
        out.append((busy * (0.6 if moment.hour == 12 else 1.0)) if working else 0.2)
    return out


def _syn_value_level(ts: Sequence[float]) -> list[float]:
    out = []
    for at in ts:
        day: date = datetime.fromtimestamp(at, UTC).date()
        month_end = (day + timedelta(days=3)).month != day.month
        out.append(1e6 * (0.9 if day.weekday() >= 5 else 1.0) * (1.15 if month_end else 1.0))
    return out


def model_of(clean: Series, clean_daily: Series | None = None, causal: bool = False) -> Model:
    """The true model of ``clean`` (``clean_daily``: the Maven daily series an hourly one
    was spread from; ``causal``: a Maven series' mean from the 4 weeks before each point,
    not the 4 weeks around it)."""
    name = clean.name
    if name.startswith("synthetic/syn_daily_value"):
        return Model(_syn_value_level(clean.ts), gauss=True)
    if name.startswith("synthetic/") and not clean.hourly:
        return Model(_syn_daily_mu(name, clean.ts), r=8.0)
    if name.startswith("synthetic/"):
        return Model(_syn_hourly_mu(name, clean.ts))
    if not clean.hourly:
        mu = _maven_mu(clean.values, clean.ts, causal)
        return Model(mu, r=_dispersion(clean.values, mu, clean.scored_from))
    assert clean_daily is not None, "an hourly Maven series needs its daily series"
    day = model_of(clean_daily, causal=causal)
    mu = []
    for i in range(len(clean.ts)):
        hour = i % 24
        share = HOUR_PROFILE[hour - 9] if 9 <= hour < 18 else 0.0
        mu.append(day.mu[i // 24] * share)
    return Model(mu, r=day.r, group=24)


# ---------------------------------------------------------------- surprises
def windows_of(series: Series) -> tuple[int, ...]:
    return (8, 24, 72) if series.hourly else (3, 7, 21)


def surprises(series: Series, model: Model) -> list[float]:
    """Per point, the largest surprise of the oracle's tests under ``model``."""
    values = series.values
    n = len(values)
    out = [0.0] * n
    log_p = [0.0] * n  # ln of the two-sided mid-p of each point (Fisher)
    var = [0.0] * n
    wins = windows_of(series)
    gauss = model.gauss
    prev_e = 0.0
    prefix = [0.0]
    for m in model.mu:
        prefix.append(prefix[-1] + m)
    for i, x in enumerate(values):
        mu = model.mu[i]
        if gauss:
            e = x / mu - 1.0
            z = (e - 0.7 * prev_e) / 0.03
            prev_e = e
            p = math.erfc(abs(z) / _SQRT2)
            if i and x == values[i - 1]:
                p = 0.0
            out[i] = _surprise(p)
            log_p[i] = math.log(max(p, 1e-300))
            var[i] = 1.0
            continue
        lo, up = count_tails(int(x), mu, model.r)
        p = min(1.0, 2.0 * min(lo, up))
        out[i] = _surprise(p)
        log_p[i] = math.log(max(p, 1e-300))
        var[i] = mu + (mu * mu / model.r if model.r != math.inf else 0.0)
    for w in wins:
        sx = smu = svar = slp = 0.0
        sz = 0.0
        for i in range(n):
            x, mu = values[i], model.mu[i]
            if gauss:
                e = x / mu - 1.0
                e_prev = values[i - 1] / model.mu[i - 1] - 1.0 if i else 0.0
                sz += (e - 0.7 * e_prev) / 0.03
            else:
                sx += x
                smu += mu
                svar += var[i]
            slp += log_p[i]
            if i >= w:
                j = i - w
                if gauss:
                    e = values[j] / model.mu[j] - 1.0
                    e_prev = values[j - 1] / model.mu[j - 1] - 1.0 if j else 0.0
                    sz -= (e - 0.7 * e_prev) / 0.03
                else:
                    sx -= values[j]
                    smu -= model.mu[j]
                    svar -= var[j]
                slp -= log_p[j]
            if i < w - 1:
                continue
            s = _surprise(chi2_even_tail(-2.0 * slp, w))
            if gauss:
                s = max(s, _surprise(math.erfc(abs(sz) / math.sqrt(w) / _SQRT2)))
            elif smu > 0.0:
                if model.group and model.r != math.inf:  # one gamma draw per day
                    g, first, svar = model.group, i - w + 1, smu
                    for d in range(first // g, i // g + 1):
                        part = prefix[min(i + 1, (d + 1) * g)] - prefix[max(first, d * g)]
                        svar += part * part / model.r
                r = smu * smu / (svar - smu) if svar > smu * (1.0 + 1e-9) else math.inf
                s = max(s, two_sided(*count_tails(round(sx), smu, r)))
            if s > out[i]:
                out[i] = s
    return out


def alarms_at(scores: Sequence[float], threshold: float, hold: int) -> list[int]:
    """Points at or above ``threshold`` with none in the ``hold`` points before them."""
    out: list[int] = []
    last = -(10**9)
    for i, s in enumerate(scores):
        if s >= threshold:
            if i - last > hold:
                out.append(i)
            last = i
    return out


def oracle_surprises(
    series: Series, clean: Series, clean_daily: Series | None, causal: bool = False
) -> list[float]:
    """The oracle's surprise of every point of ``series`` (injected) under the true model
    of its clean version."""
    return surprises(series, model_of(clean, clean_daily, causal))
