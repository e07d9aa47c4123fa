"""The rule contract: one pydantic discriminated union on ``type``.

Rules are data (YAML in ``rules/``, JSON on the compacted ``crm.rules`` topic). Nothing in a
rule names code: ``type`` picks an entry of the closed registry in
:mod:`streams.rules.registry`, and conditions are CEL expressions compiled once per version.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from streams.contracts.alerts import Severity
from streams.contracts.events import EntityKind

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppliesTo(_Strict):
    """Which records (or KPI series) a rule looks at."""

    entity: EntityKind = Field(EntityKind.DEAL, description="Entity kind the rule watches.")
    sources: list[str] | None = Field(None, description="Only events from these sources.")
    owners: list[str] | None = Field(None, description="Only records of these owners.")


class Realert(_Strict):
    """Reminder cadence while an alert stays open."""

    every: timedelta = Field(description="First reminder after this duration (ISO 8601 or s).")
    backoff: float = Field(1.0, ge=1.0, description="Multiply the delay by this each time.")
    max_every: timedelta | None = Field(None, description="Upper bound of the delay.")


class RuleBase(_Strict):
    id: str = Field(pattern=RULE_ID_PATTERN, description="Stable rule id (metric label, key).")
    version: int = Field(1, ge=1, description="Bumped by the author on every change.")
    description: str = Field("", max_length=2000)
    title: str | None = Field(None, max_length=200, description="Alert title template.")
    severity: Severity = Severity.WARNING
    enabled: bool = True
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    condition: str | None = Field(
        None, max_length=4000, description="Extra CEL guard evaluated on the record after change."
    )
    message: str = Field(
        min_length=1, max_length=2000, description="Alert text; {path} placeholders."
    )
    realert: Realert | None = None
    escalate_after: int | None = Field(None, ge=1, description="Reminders before escalation.")
    resolve_when: str | None = Field(None, max_length=4000, description="CEL: episode ends.")


class ConditionRule(RuleBase):
    """Fires when a CEL condition on the record holds after a change."""

    type: Literal["condition"]
    condition: str = Field(min_length=1, max_length=4000, description="CEL condition.")
    each_time: bool = Field(
        False,
        description="Every change where the condition holds is an alert of its own (a "
        "movement) instead of one episode that lasts until the condition stops holding.",
    )


TransitionChange = Literal[
    "changed", "increased", "decreased", "changed_by", "backwards", "pushed_later"
]


class TransitionRule(RuleBase):
    """Fires when ``field`` moves in a given way between the old and new record."""

    type: Literal["transition"]
    field: str = Field(min_length=1, max_length=200, description="Field watched.")
    pct: float | None = Field(None, gt=0, description="Relative threshold in % (changed_by…).")
    abs: float | None = Field(None, gt=0, description="Absolute threshold (changed_by…).")
    order: list[str] | None = Field(None, description="Ordered values, for change=backwards.")
    min_pushes: int = Field(1, ge=1, description="For pushed_later: fire from the Nth push.")
    change: TransitionChange = Field(description="Kind of movement that fires.")

    @field_validator("change")
    @classmethod
    def _parameters_fit_change(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        if value in ("increased", "decreased", "changed_by") and (
            data.get("pct") is None and data.get("abs") is None
        ):
            raise ValueError(f"change={value} needs 'pct' or 'abs'")
        if value == "backwards" and len(data.get("order") or []) < 2:
            raise ValueError("change=backwards needs 'order' with at least two values")
        return value


class RequiredFieldsRule(RuleBase):
    """Fires when required fields are missing or blank (optionally only while ``condition``)."""

    type: Literal["required_fields"]
    fields: list[str] = Field(min_length=1, description="Fields that must be filled.")
    when_stages: list[str] | None = Field(
        None, description="Only for records whose 'stage' is one of these."
    )

    @field_validator("fields")
    @classmethod
    def _no_blank_names(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("field names must not be blank")
        return value


Rule = Annotated[
    ConditionRule | TransitionRule | RequiredFieldsRule,
    Field(discriminator="type"),
]

RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


def parse_rule(data: Any) -> Rule:
    """Validate one rule from plain data (raises :class:`pydantic.ValidationError`)."""
    return RULE_ADAPTER.validate_python(data)
