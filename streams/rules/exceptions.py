"""Errors of the rules package; all share :class:`RuleError`."""

from __future__ import annotations

from streams.errors import PulseError


class RuleError(PulseError):
    """Base class of every rule error."""


class RuleCompileError(RuleError):
    """A rule is well-formed but cannot be compiled (bad CEL, bad template)."""

    def __init__(self, rule_id: str, field: str, detail: str) -> None:
        super().__init__(f"rule {rule_id!r}: field '{field}': {detail}")
        self.rule_id = rule_id
        self.field = field
        self.detail = detail
