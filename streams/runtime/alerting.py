"""The per-worker alerting state the shipper and the alerting agents share.

:class:`AlertingRuntime` holds the timer index, the silence book, the notification budget,
the gate and the alert board. The shipper calls :meth:`~AlertingRuntime.gate` (silences and
budget: notify or not) and :meth:`~AlertingRuntime.ready` before it ships alerts, and
:meth:`~AlertingRuntime.schedule` once their states are written. It is built with the
container (:func:`streams.runtime.container.build_runtime`), before any agent is
registered, so no registration order can leave alerts ungated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.alerting.board import AlertBoard
from streams.alerting.budget import NotificationBudget
from streams.alerting.gate import Gate
from streams.alerting.silences import SilenceBook
from streams.contracts.alerts import AlertEvent
from streams.metrics import Metrics
from streams.org import OrgDirectory
from streams.settings import Settings
from streams.timers import TimerIndex

log = logging.getLogger(__name__)

#: Seconds after a budget window ends before its digests go out (the other workers' alerts
#: of that window are read back from crm.alerts meanwhile).
DIGEST_GRACE_S = 5.0
#: Longest wait of the gate for crm.alerts to be read up to its end after a start.
GATE_WAIT_S = 30.0


@dataclass
class AlertingRuntime:
    org: OrgDirectory
    silences: SilenceBook
    budget: NotificationBudget
    gatekeeper: Gate
    board: AlertBoard
    index: TimerIndex = field(default_factory=TimerIndex)
    generation: tuple[int, int] | None = None
    silences_topic: Any = None
    #: Set once crm.alerts has been read up to its end as of the start (budget rebuilt).
    alerts_read: asyncio.Event = field(default_factory=asyncio.Event)
    gate_wait_over: bool = False
    gate_wait_s: float = GATE_WAIT_S

    @classmethod
    def from_settings(cls, settings: Settings, org: OrgDirectory) -> AlertingRuntime:
        silences = SilenceBook()
        budget = NotificationBudget(
            settings.notify_budget_per_hour, settings.notify_budget_window_s, DIGEST_GRACE_S
        )
        return cls(
            org=org, silences=silences, budget=budget, gatekeeper=Gate(silences, budget, org),
            board=AlertBoard(settings.alert_board_keep, settings.alert_board_keep_open),
        )  # fmt: skip

    def gate(
        self, alerts: Sequence[AlertEvent], now: datetime, metrics: Metrics
    ) -> list[AlertEvent]:
        """Mark silenced / over-budget alerts (still published, not notified); counts them."""
        if not alerts:
            return list(alerts)
        gated, counts = self.gatekeeper.apply(alerts, now)
        for (rule, reason), n in counts.items():
            metrics.alerts_muted.labels(rule=rule, reason=reason).inc(n)
        return gated

    async def ready(self) -> None:
        """Before the first alert is gated after a start, wait until the budget has been
        rebuilt from crm.alerts (at most ``gate_wait_s``; then gate with what has been read,
        and say so)."""
        if self.gate_wait_over or self.budget.per_hour <= 0 or self.alerts_read.is_set():
            return
        try:
            await asyncio.wait_for(self.alerts_read.wait(), timeout=self.gate_wait_s)
        except TimeoutError:
            self.gate_wait_over = True
            log.warning("crm.alerts not read to its end after %.0f s: the notification budget "
                        "goes on with the alerts read so far", self.gate_wait_s)  # fmt: skip

    def schedule(self, due: Mapping[bytes, float | None], metrics: Metrics) -> None:
        """Schedule the timer deadlines of states just written."""
        for key, when in due.items():
            self.index.schedule(key, when)
        metrics.timers_pending.set(len(self.index))
