"""The notification gate: silences and the per-owner budget decide ``notify`` (pure).

Every alert is still published on ``crm.alerts`` (recorded, counted); the gate only marks
the ones that must not be notified: ``notify: false`` with ``silenced_by`` or ``held_back``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from streams.alerting.budget import NotificationBudget
from streams.alerting.silences import SilenceBook
from streams.contracts.alerts import AlertEvent
from streams.org import OrgDirectory


class Gate:
    def __init__(self, silences: SilenceBook, budget: NotificationBudget, org: OrgDirectory):
        self.silences = silences
        self.budget = budget
        self.org = org

    def apply(
        self, alerts: Sequence[AlertEvent], now: datetime
    ) -> tuple[list[AlertEvent], Counter[tuple[str, str]]]:
        """The alerts marked for notification; counts (rule, outcome) of muted/held ones."""
        out: list[AlertEvent] = []
        counts: Counter[tuple[str, str]] = Counter()
        for alert in alerts:
            silence = self.silences.match(alert, now, self.org.team_of)
            if silence is not None:
                out.append(alert.model_copy(update={"notify": False, "silenced_by": silence.id}))
                counts[(alert.rule_id, "silenced")] += 1
            elif not self.budget.admit(alert, now):
                out.append(alert.model_copy(update={"notify": False, "held_back": True}))
                counts[(alert.rule_id, "held_back")] += 1
            else:
                out.append(alert)
        return out, counts
