"""Human views of alerts: one coloured line per alert, and the filter of a live tail of
``crm.alerts`` (the tail itself, Kafka I/O, is :func:`streams.runtime.alerts_topic.tail_alerts`)."""

from __future__ import annotations

from typing import Any

import orjson

COLOURS = {"critical": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m"}
DIM = "\033[2m"
RESET = "\033[0m"


def format_alert(raw: bytes, colour: bool) -> str:
    """One line per alert: status, severity, rule, subject, message (+ muted/escalation)."""
    try:
        alert = orjson.loads(raw)
        subject = alert["subject"]
        where = subject["id"] if not subject.get("scope") else f"{subject['id']}@{subject['scope']}"
        line = (
            f"{alert['status']:<9} {alert['severity']:<8} {alert['rule_id']:<28} "
            f"{where:<18} {alert['message']}"
        )
        if alert.get("escalated_to"):
            line += f"  -> {alert['escalated_to']}"
        if alert.get("silenced_by"):
            line += f"  [silenced by {alert['silenced_by']}]"
        elif alert.get("held_back"):
            line += "  [held back: over budget]"
        severity = str(alert.get("severity", ""))
        quiet = alert.get("notify") is False
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"(unreadable alert) {raw[:200]!r}"
    if colour and quiet:
        return f"{DIM}{line}{RESET}"
    if colour and severity in COLOURS:
        return f"{COLOURS[severity]}{line}{RESET}"
    return line


def wanted(raw: bytes, status: str | None, owner: str | None, rule: str | None) -> bool:
    try:
        alert: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    return (
        (status is None or str(alert.get("status", "")).lower() == status.lower())
        and (owner is None or owner in (alert.get("owner_id"), alert.get("escalated_to")))
        and (rule is None or alert.get("rule_id") == rule)
    )
