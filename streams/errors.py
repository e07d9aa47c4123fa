"""The one base of every CRM Pulse exception: ``except PulseError`` catches anything of
ours and nothing else. Each package keeps its own subclasses (``RuleError``,
``KpiError``, ``BrokerError``, ...)."""

from __future__ import annotations


class PulseError(Exception):
    """Base class of every CRM Pulse error."""


class WiringError(PulseError):
    """The worker's parts are not wired together as they must be (a start-up error)."""
