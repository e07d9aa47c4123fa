"""The alert board: the latest status of each episode read from ``crm.alerts`` (pure).

Every worker reads the whole alerts topic, so ``GET /alerts`` answers for the cluster.
Resolved ones are kept up to ``keep_resolved``, open ones up to ``keep_open`` (oldest
dropped: point alerts, such as a stage moved backwards, are FIRING and never resolve, so an
unbounded board would grow with every one of them; ``crm.alerts`` stays the full record).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

OPEN = frozenset({"FIRING", "REMINDER", "ESCALATED"})
STATUS_FILTERS = {
    "firing": OPEN, "open": OPEN, "escalated": OPEN,
    "resolved": frozenset({"RESOLVED"}), "digest": frozenset({"DIGEST"}),
}  # fmt: skip


class AlertBoard:
    def __init__(self, keep_resolved: int = 10_000, keep_open: int = 10_000) -> None:
        self.keep_resolved = keep_resolved
        self.keep_open = keep_open
        self._open: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._closed: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def apply_record(self, value: bytes | None) -> bool:
        if not value:
            return False
        try:
            alert = orjson.loads(value)
        except orjson.JSONDecodeError:
            return False
        return self.apply(alert)

    def apply(self, alert: Any) -> bool:
        """Fold one decoded alert; ``False`` when unreadable or not newer than known."""
        try:
            alert_id, sequence, status = alert["alert_id"], int(alert["sequence"]), alert["status"]
        except (KeyError, TypeError, ValueError):
            return False
        known = self._open.get(alert_id) or self._closed.get(alert_id)
        if known is not None and int(known["sequence"]) >= sequence:
            return False  # a replay or an older status: the board keeps the latest
        if status in OPEN:
            self._open[alert_id] = alert
            self._closed.pop(alert_id, None)
            while len(self._open) > self.keep_open:
                self._open.popitem(last=False)
        else:
            self._open.pop(alert_id, None)
            self._closed[alert_id] = alert
            while len(self._closed) > self.keep_resolved:
                self._closed.popitem(last=False)
        return True

    def query(
        self, status: str | None = None, owner: str | None = None, rule: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Latest alerts, newest first; ``status`` one of :data:`STATUS_FILTERS`
        (``escalated``: open episodes escalated to a manager, whatever their last status)."""
        if status is not None and status.lower() not in STATUS_FILTERS:
            raise ValueError(f"status must be one of {sorted(STATUS_FILTERS)}")
        wanted = STATUS_FILTERS[status.lower()] if status else None
        pool = list(self._open.values()) + list(self._closed.values())
        found = [
            a for a in pool
            if (wanted is None or a["status"] in wanted)
            and (status is None or status.lower() != "escalated" or a.get("escalated_to"))
            and (owner is None or a.get("owner_id") == owner or a.get("escalated_to") == owner)
            and (rule is None or a.get("rule_id") == rule)
        ]  # fmt: skip
        found.sort(key=lambda a: str(a.get("fired_at")), reverse=True)
        return found[:limit]

    def __len__(self) -> int:
        return len(self._open) + len(self._closed)
