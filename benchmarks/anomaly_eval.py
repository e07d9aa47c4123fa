"""Event-level scoring of alarms against labelled anomalies (pure).

An *alarm* is the onset of an episode (what a manager receives). A labelled anomaly is
detected when an alarm falls in ``[start, end + grace]``; its delay is the first such
alarm's index minus ``start``. Alarms outside every such window are false alarms.
Precision = detected / (detected + false alarms); recall = detected / anomalies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median

from benchmarks.anomaly_series import KINDS, Anomaly


@dataclass
class Tally:
    anomalies: int = 0
    detected: int = 0
    false_alarms: int = 0
    months: float = 0.0
    delays: list[int] = field(default_factory=list)
    kind_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kind_hit: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kind_delays: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    #: flatline detection delays in days (the first silent point counts as its whole step)
    flatline_days: list[float] = field(default_factory=list)
    #: flatlines detected while still silent (before the injected silent stretch ended)
    flatline_in_stretch: int = 0
    #: false alarms from the Maven sample's documented wind-down on (a diagnostic: they
    #: count as false alarms like every other)
    wind_down_false_alarms: int = 0

    @property
    def precision(self) -> float:
        found = self.detected + self.false_alarms
        return self.detected / found if found else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.anomalies if self.anomalies else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fa_per_month(self) -> float:
        return self.false_alarms / self.months if self.months else 0.0

    def median_delay(self, kind: str | None = None) -> float | None:
        delays = self.delays if kind is None else self.kind_delays[kind]
        return float(median(delays)) if delays else None


def onsets(scores: Iterable[float], threshold: float) -> list[int]:
    """Indices where the score crosses ``threshold`` from below (one alarm per run)."""
    out: list[int] = []
    above = False
    for i, score in enumerate(scores):
        now = score >= threshold
        if now and not above:
            out.append(i)
        above = now
    return out


def score_series(
    tally: Tally, alarms: Sequence[int], labels: Sequence[Anomaly], grace: int, months: float,
    points_per_day: float, scored_from: int = 0, wind_down_from: int | None = None,
) -> None:  # fmt: skip
    """Add one series' alarms to ``tally``; alarms before ``scored_from`` are not scored;
    false alarms from ``wind_down_from`` on are also counted apart (diagnostic)."""
    alarms = [a for a in alarms if a >= scored_from]
    matched: set[int] = set()
    tally.months += months
    for label in labels:
        tally.anomalies += 1
        tally.kind_total[label.kind] += 1
        hits = [a for a in alarms if label.start <= a <= label.end + grace]
        matched.update(hits)
        if hits:
            delay = hits[0] - label.start
            tally.detected += 1
            tally.kind_hit[label.kind] += 1
            tally.delays.append(delay)
            tally.kind_delays[label.kind].append(delay)
            if label.kind == "flatline":
                tally.flatline_days.append((delay + 1) / points_per_day)
                tally.flatline_in_stretch += hits[0] <= label.end
    false = [a for a in alarms if a not in matched]
    tally.false_alarms += len(false)
    if wind_down_from is not None:
        tally.wind_down_false_alarms += sum(1 for a in false if a >= wind_down_from)
