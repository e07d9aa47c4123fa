"""Public message contracts (pydantic models with exported JSON Schemas under ``schemas/``)."""

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity, Subject
from streams.contracts.deadletter import DeadLetter, DeadLetterReason
from streams.contracts.events import ChangeEvent, EntityKind, Op
from streams.contracts.kpis import KpiSnapshot

__all__ = [
    "AlertEvent",
    "AlertStatus",
    "ChangeEvent",
    "DeadLetter",
    "DeadLetterReason",
    "EntityKind",
    "KpiSnapshot",
    "Op",
    "Severity",
    "Subject",
]
