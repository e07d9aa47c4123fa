"""The rule contract: one pydantic discriminated union on ``type``.

Rules are data (YAML in ``rules/``, JSON on the compacted ``crm.rules`` topic). Nothing in a
rule names code: ``type`` picks an entry of the closed registry in
:mod:`streams.rules.registry`, and conditions are CEL expressions compiled once per version.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from streams.contracts.alerts import Severity
from streams.contracts.events import EntityKind

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
#: Longest duration a rule may declare: a timer further out is a typo, and ``now + duration``
#: must stay far inside the years datetime can hold.
MAX_DURATION = timedelta(days=3650)


def _shown(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g} s" if abs(seconds) < 86_400 else f"{seconds / 86_400:g} days"


def _duration_error(text: str, value: timedelta) -> PydanticCustomError:
    return PydanticCustomError(
        "duration_range", "{text}, got {got}", {"text": text, "got": _shown(value)}
    )


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise _duration_error("must be a positive duration", value)
    if value > MAX_DURATION:
        raise _duration_error(f"must be at most {MAX_DURATION.days} days", value)
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise _duration_error("must not be negative (0 means none)", value)
    if value > MAX_DURATION:
        raise _duration_error(f"must be at most {MAX_DURATION.days} days", value)
    return value


#: A duration greater than zero (a timer, a cadence, a window), at most ``MAX_DURATION``.
PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]
#: A duration of zero or more (a tolerance, a sustain, a cooldown), at most ``MAX_DURATION``.
NonNegativeDuration = Annotated[timedelta, AfterValidator(_not_negative)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppliesTo(_Strict):
    """Which records (or KPI series) a rule looks at."""

    entity: EntityKind = Field(EntityKind.DEAL, description="Entity kind the rule watches.")
    sources: list[str] | None = Field(None, description="Only events from these sources.")
    owners: list[str] | None = Field(None, description="Only records of these owners.")


class Realert(_Strict):
    """Reminder cadence while an alert stays open."""

    every: PositiveDuration = Field(
        description="First reminder after this duration (ISO 8601 or s; > 0)."
    )
    backoff: float = Field(1.0, ge=1.0, description="Multiply the delay by this each time.")
    max_every: PositiveDuration | None = Field(None, description="Upper bound of the delay.")


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
        min_length=1,
        max_length=2000,
        description="Alert text; {path} placeholders, [[optional sections]].",
    )
    resolved_message: str | None = Field(
        None,
        max_length=2000,
        description="Text of the RESOLVED alert (default: 'Resolved: ' and the message, "
        "read with the evidence the episode opened with).",
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


class BusinessTime(_Strict):
    """Count durations in working time only (owner's timezone, working days and hours)."""

    timezone: str = Field("UTC", description="IANA timezone used when the owner has none.")
    use_owner_timezone: bool = Field(True, description="Prefer the owner's timezone (org).")
    days: list[int] = Field([1, 2, 3, 4, 5], description="ISO weekdays worked (1=Monday).")
    start: str = Field("09:00", pattern=r"^\d{2}:\d{2}$", description="Working day start.")
    end: str = Field("18:00", pattern=r"^\d{2}:\d{2}$", description="Working day end.")

    @field_validator("days")
    @classmethod
    def _days_are_weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(d < 1 or d > 7 for d in value):
            raise ValueError("days must be ISO weekdays 1..7, at least one")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class InactivityRule(RuleBase):
    """Fires when a record sees no qualifying change for ``after`` (per-record timer).

    ``anchor=last_activity``: the clock restarts at every qualifying change (idle deal).
    ``anchor=created``: the clock runs from creation; the first qualifying change disarms it
    for good (lead not contacted within 1 hour). ``condition`` (CEL) must hold for the timer
    to run (e.g. the deal is open); when it stops holding the episode resolves.
    """

    type: Literal["inactivity"]
    after: PositiveDuration = Field(
        description="Allowed idle time (ISO 8601 duration or seconds; > 0)."
    )
    activity_fields: list[str] | None = Field(
        None, description="Changes of these fields count as activity (default: any change)."
    )
    anchor: Literal["last_activity", "created"] = "last_activity"
    business_time: BusinessTime | None = None


class OverdueRule(RuleBase):
    """Fires when the date in ``field`` (plus ``grace``) is past while ``condition`` holds."""

    type: Literal["overdue"]
    field: str = Field(min_length=1, max_length=200, description="Date or datetime field.")
    grace: NonNegativeDuration = Field(timedelta(0), description="Tolerance after the date.")
    business_time: BusinessTime | None = None


class FrequencyRule(RuleBase):
    """Fires when ``count`` matching changes happen within ``window`` for one key.

    ``per: record`` counts the changes of each record; ``per: owner`` counts the changes of
    all the records of one owner (e.g. deals lost by one rep), across partitions.
    ``condition`` (CEL on the change) selects the matching changes.
    """

    type: Literal["frequency"]
    count: int = Field(ge=2, description="Matching changes needed within the window.")
    window: PositiveDuration = Field(description="Sliding window length (> 0).")
    fields: list[str] | None = Field(None, description="Only changes of these fields count.")
    per: Literal["record", "owner"] = Field(
        "record",
        description="Counting key: each record, or each owner (all the records of one "
        "owner_id, repartitioned by owner).",
    )


class KpiRuleBase(RuleBase):
    """Common parameters of KPI rules: which series of ``crm.kpis`` they watch."""

    kpi: str = Field(min_length=1, max_length=100, description="KPI id (e.g. win_rate).")
    scope_kinds: list[str] | None = Field(None, description="Only these scope kinds.")
    scope_ids: list[str] | None = Field(None, description="Only these scope ids.")
    windows: list[str] | None = Field(None, description="Only these window kinds.")
    include_untrusted: bool = Field(False, description="Also judge untrusted KPI values.")
    min_trust: float = Field(0.5, ge=0, le=1, description="Values below it are untrusted.")


class KpiThresholdRule(KpiRuleBase):
    """Fires when a KPI leaves [``min``, ``max``], optionally for ``sustain`` at least."""

    type: Literal["kpi_threshold"]
    min: float | None = None
    max: float | None = None
    sustain: NonNegativeDuration = Field(timedelta(0), description="How long it must stay out.")

    @model_validator(mode="after")
    def _has_band(self) -> KpiThresholdRule:
        if self.min is None and self.max is None:
            raise ValueError("kpi_threshold needs 'min' or 'max'")
        return self


class KpiAnomalyRule(KpiRuleBase):
    """Fires when a KPI departs from its own pattern (:class:`streams.anomaly.AnomalyDetector`:
    seasonal baseline, robust scale, level shifts, flatlines; one episode per anomaly)."""

    type: Literal["kpi_anomaly"]
    threshold: float = Field(
        0.995, gt=0, lt=1, description="Score from which it fires (1 - p up to 0.9999)."
    )
    warmup: int = Field(20, ge=2, description="Points learnt before any firing.")
    half_life: float = Field(60.0, gt=0, description="Points after which weight halves.")
    direction: Literal["both", "up", "down"] = "both"
    cooldown: NonNegativeDuration = Field(timedelta(0), description="Quiet time after an episode.")
    season: Literal["auto", "none", "day_of_week", "hour_of_day", "hour_of_week"] = Field(
        "auto", description="Seasonal profile learnt online (auto: from the sampling step)."
    )
    timezone: str = Field("UTC", description="IANA timezone of the seasonal profile's calendar.")
    count: Literal["auto", "yes", "no"] = Field(
        "auto", description="Score as counts (Poisson noise floor); auto: integer values."
    )
    shift_k: float = Field(
        1.25, gt=0, le=5, description="CUSUM allowance in sd: smaller finds smaller shifts."
    )
    flatline: bool = Field(True, description="Also fire on runs of zeros / stuck values.")
    cooldown_points: int = Field(10, ge=0, description="Points without a new episode after one.")
    clear_points: int = Field(1, ge=1, description="Calm points in a row that end an episode.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return BusinessTime._known_timezone(value)


class FeedSilenceRule(KpiRuleBase):
    """Fires when the snapshots of a KPI series stop coming for longer than their learnt
    rhythm allows, counted in working time (the feed behind the KPI went silent)."""

    type: Literal["feed_silence"]
    business_time: BusinessTime = Field(
        default_factory=lambda: BusinessTime(), description="The working calendar."
    )
    factor: float = Field(
        3.0, gt=1, le=100, description="Allowed silence: factor x the learnt usual gap."
    )
    min_gap: PositiveDuration = Field(
        timedelta(minutes=30), description="Allowed silence is never shorter (working time)."
    )
    max_gap: PositiveDuration | None = Field(
        None, description="Allowed silence is never longer (working time)."
    )
    warmup: int = Field(5, ge=2, description="Snapshots learnt before it may fire.")


Rule = Annotated[
    ConditionRule
    | TransitionRule
    | RequiredFieldsRule
    | InactivityRule
    | OverdueRule
    | FrequencyRule
    | KpiThresholdRule
    | KpiAnomalyRule
    | FeedSilenceRule,
    Field(discriminator="type"),
]

RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


def parse_rule(data: Any) -> Rule:
    """Validate one rule from plain data (raises :class:`pydantic.ValidationError`)."""
    return RULE_ADAPTER.validate_python(data)
