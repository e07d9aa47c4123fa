"""Output records that always fit the broker's message limit (pure).

Kafka refuses a record larger than its message limit (``message.max.bytes``, 1 MiB by
default; the producer's ``max_request_size`` is set to the same ``max_message_bytes``
setting) with ``MessageSizeTooLargeError``, and a worker that cannot ship a batch stops.
Every record the worker writes is therefore built to fit ``max_message_bytes`` minus
:data:`RECORD_OVERHEAD` (key, headers, batch framing):

- alerts are bounded by their contract (:mod:`streams.contracts.alerts`); :func:`alert_value`
  is the last guard (evidence replaced by a marker);
- dead letters (:func:`dead_letter_record`): the ``DeadLetter`` header's ``detail`` is cut to
  :data:`DETAIL_MAX_CHARS`; a refused value that cannot travel with its headers keeps its
  first bytes and the header ``crm-pulse-cut`` gives its original size;
- record states are capped by :meth:`streams.judge.state.EntityState.encode`; KPI facts messages are
  split by size (:func:`streams.agents.kpi_facts.facts_records`).
"""

from __future__ import annotations

from typing import Any

from streams.contracts.alerts import AlertEvent
from streams.jsonbytes import cut_text

#: Bytes kept free in each record for its key, headers and the record batch framing.
RECORD_OVERHEAD = 8 * 1024
DETAIL_MAX_CHARS = 1_000


def value_budget(max_message_bytes: int, key: bytes | None = None) -> int:
    """Largest value a record of ``key`` may carry."""
    return max_message_bytes - RECORD_OVERHEAD - len(key or b"")


def alert_value(alert: AlertEvent, max_message_bytes: int) -> tuple[bytes, bool]:
    """The alert as JSON bytes within the budget; ``True`` when it had to be cut."""
    value = alert.model_dump_json().encode()
    budget = value_budget(max_message_bytes, alert.alert_id.encode())
    if len(value) <= budget:
        return value, False
    smaller = alert.model_copy(
        update={"evidence": {"cut": f"[cut: {len(value)} bytes of alert]"},
                "event_ids": alert.event_ids[-10:]}
    )  # fmt: skip
    # title, message, ids and evidence are bounded by the contract: this is a few KiB
    return smaller.model_dump_json().encode(), True


def dead_letter_headers(dead: Any) -> list[tuple[str, bytes]]:
    """``crm-pulse-error`` (the DeadLetter JSON, detail cut), ``crm-pulse-reason`` and, for a
    CRM source's refusal, ``crm-pulse-source`` (the source id)."""
    if len(dead.detail) > DETAIL_MAX_CHARS or (dead.field and len(dead.field) > 500):
        dead = dead.model_copy(
            update={"detail": cut_text(dead.detail, DETAIL_MAX_CHARS),
                    "field": cut_text(dead.field, 500) if dead.field else dead.field}
        )  # fmt: skip
    reason = dead.reason.value if hasattr(dead.reason, "value") else str(dead.reason)
    headers = [
        ("crm-pulse-error", dead.model_dump_json().encode()),
        ("crm-pulse-reason", reason.encode()),
    ]
    if getattr(dead, "source", None):  # refused by a CRM source: its id, readable alone
        headers.append(("crm-pulse-source", dead.source.encode()))
    return headers


def dead_letter_record(
    key: bytes | None, value: bytes | None, dead: Any, max_message_bytes: int
) -> tuple[bytes | None, list[tuple[str, bytes]], bool]:
    """Value and headers of a dead letter within the limit; ``True`` when the value was cut."""
    headers = dead_letter_headers(dead)
    budget = value_budget(max_message_bytes, key) - sum(len(k) + len(v) for k, v in headers)
    if value is None or len(value) <= budget:
        return value, headers, False
    cut = ("crm-pulse-cut", str(len(value)).encode())
    headers.append(cut)
    return value[: budget - len(cut[0]) - len(cut[1])], headers, True
