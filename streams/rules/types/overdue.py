"""``overdue``: a date field is past (plus ``grace``) while ``condition`` holds (timer).

A date without time means "by the end of that day" in the owner's timezone (UTC when
unknown). A missing or unreadable date yields no alert and a counted skip reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from streams.contracts.events import Op
from streams.rules.cel_expr import CelExpression
from streams.rules.change import Change, Outcome
from streams.rules.model import OverdueRule
from streams.rules.types.timing import deadline, iso
from streams.rules.types.values import is_blank


def parse_due(value: Any, tz: str | None) -> datetime | None:
    """A deadline from a date (end of that day in ``tz``) or an ISO datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        day = value
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 10:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    zone = ZoneInfo(tz) if tz else UTC
    return datetime.combine(day + timedelta(days=1), time(0), zone)


def evaluate(
    rule: OverdueRule, change: Change, state: Mapping[str, Any], guard: CelExpression | None
) -> Outcome:
    if change.event.op is Op.DELETE:
        return Outcome(holds=False, evidence={}, state={})
    if guard is not None and not guard.holds(change):
        return Outcome(holds=False, evidence={}, state={})
    raw = change.after.get(rule.field)
    if is_blank(raw):
        return Outcome(holds=False, evidence={}, state={}, skip="missing_field")
    tz = change.tz or (rule.business_time.timezone if rule.business_time else None)
    base = parse_due(raw, tz)
    if base is None:
        return Outcome(holds=False, evidence={"value": raw}, state={}, skip="bad_value")
    due = deadline(base, rule.grace, rule.business_time, change.tz).timestamp()
    late_s = change.now.timestamp() - due
    evidence = {
        "field": rule.field, "value": raw, "due_at": iso(due),
        "late_s": round(max(0.0, late_s), 3), "late_days": round(max(0.0, late_s) / 86400, 2),
    }  # fmt: skip
    return Outcome(holds=late_s >= 0, evidence=evidence, state={"due": due})
