"""``feed_silence``: the snapshots of a KPI series stop coming for longer than usual.

Pure: ``evaluate_kpi(rule, point, state, now)``. A new snapshot (``computed_at`` later
than the last one) is an arrival: the gap since the previous one, in working seconds of the
rule's calendar, is learnt (:class:`~streams.anomaly.silence.FeedRhythm`), an open episode
resolves, and the deadline ``due`` is set to the last arrival plus the allowed silence in
working time. The timer re-checks the series at ``due`` (same point again): still no newer
snapshot, the rule fires, with the KPI's trust after that silence
(:func:`~streams.anomaly.silence.feed_trust`, below the default trust floor).
State: ``{"rh": rhythm, "last": epoch s, "due": epoch s | None, "holds": bool}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from streams.anomaly.silence import (
    Calendar,
    FeedRhythm,
    add_working,
    feed_trust,
    working_seconds,
)
from streams.rules.change import Outcome
from streams.rules.kpi_point import KpiPoint
from streams.rules.model import FeedSilenceRule
from streams.rules.types.timing import iso


def calendar_of(rule: FeedSilenceRule) -> Calendar:
    bt = rule.business_time
    return Calendar(bt.timezone, tuple(bt.days), bt.start, bt.end)


def _allowed(rule: FeedSilenceRule, rhythm: FeedRhythm) -> float:
    max_gap = rule.max_gap.total_seconds() if rule.max_gap is not None else None
    return rhythm.allowed(rule.factor, rule.min_gap.total_seconds(), max_gap)


def evaluate_kpi(
    rule: FeedSilenceRule, point: KpiPoint, state: Mapping[str, Any], now: datetime
) -> Outcome:
    cal = calendar_of(rule)
    rhythm = FeedRhythm.from_dict(state.get("rh"))
    at = point.computed_at.timestamp()
    last = state.get("last")
    base = {"kpi": point.kpi, "scope": point.scope, "window": point.window}
    if last is None or at > float(last):  # an arrival: the feed is alive
        gap = None
        if last is not None:
            gap = working_seconds(_dt(float(last)), point.computed_at, cal)
        rhythm.observe(at, gap, _allowed(rule, rhythm) if rhythm.n >= rule.warmup else None)
        allowed = _allowed(rule, rhythm)
        due = None
        if rhythm.n >= rule.warmup:
            due = add_working(point.computed_at, allowed, cal).timestamp()
        evidence = {**base, "usual_gap_s": round(rhythm.usual_gap(), 3),
                    "allowed_silence_s": round(allowed, 3)}  # fmt: skip
        new_state = {"rh": rhythm.to_dict(), "last": at, "due": due, "holds": False}
        return Outcome(holds=False, evidence=evidence, state=new_state)
    due = state.get("due")
    if due is None or now.timestamp() < float(due):
        return Outcome(holds=bool(state.get("holds")), evidence={}, state=state)
    silent = working_seconds(_dt(float(last)), now, cal)
    allowed = _allowed(rule, rhythm)
    usual = rhythm.usual_gap()
    evidence = {
        **base, "silent_since": iso(float(last)), "silent_working_s": round(silent, 3),
        "allowed_silence_s": round(allowed, 3), "usual_gap_s": round(usual, 3),
        "kpi_trust": round(feed_trust(silent, usual, allowed), 6),
        "kpi_trust_before": point.trust, "calendar": {"timezone": cal.timezone,
        "days": list(cal.days), "start": cal.start, "end": cal.end},
    }  # fmt: skip
    return Outcome(holds=True, evidence=evidence, state={**state, "holds": True})


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
