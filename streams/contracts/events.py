"""``ChangeEvent``: one change of one CRM record, the input contract of ``crm.events``."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    WithJsonSchema,
)
from pydantic_core import core_schema as cs

from streams.contracts.limits import (
    EXACT_INT,
    MAX_ABS_INT,
    MAX_ABS_NUMBER,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_MEMBERS,
    MAX_NAME_CHARS,
    MAX_STRING_CHARS,
    check_fields,
)


class EntityKind(StrEnum):
    DEAL = "deal"
    LEAD = "lead"
    ACCOUNT = "account"
    CONTACT = "contact"
    ACTIVITY = "activity"
    TASK = "task"


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


#: A character that is not white space: the white space the engine trims around strings
#: (Unicode ``White_Space``) spelled out, so the schema and the code agree on every engine.
NOT_BLANK = r"[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
#: RFC 3339 ``date-time`` with a mandatory offset (``Z`` or ``±hh:mm``), ``T`` separator.
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class _Rfc3339Text:
    """From JSON, only RFC 3339 text reaches the datetime parser (no epoch numbers, no
    numeric text); Python callers (timers) pass datetimes. Checked in pydantic-core."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> cs.CoreSchema:
        parsed = handler(source)
        text = cs.str_schema(pattern=RFC3339, strip_whitespace=False)
        return cs.json_or_python_schema(
            json_schema=cs.custom_error_schema(
                cs.chain_schema([text, parsed]),
                custom_error_type="invalid_field",
                custom_error_message="occurred_at must be an RFC 3339 date-time string with "
                "an offset, e.g. 2026-03-02T09:14:00+00:00",
                custom_error_context={"path": "occurred_at"},
            ),
            python_schema=parsed,
        )


class _OwnerText:
    """An owner id written as an integer becomes its decimal string (exact at any size)."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> cs.CoreSchema:
        number = cs.int_schema(strict=True, gt=-MAX_ABS_INT, lt=MAX_ABS_INT)
        return cs.custom_error_schema(
            cs.nullable_schema(
                cs.union_schema(
                    [
                        cs.str_schema(max_length=200),
                        cs.no_info_after_validator_function(str, number),
                    ]
                )
            ),
            custom_error_type="invalid_field",
            custom_error_message="owner_id must be text of at most 200 characters, an integer "
            "or null",
            custom_error_context={"path": "owner_id"},
        )


Id = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
EventTime = Annotated[
    AwareDatetime,
    _Rfc3339Text,
    Field(
        json_schema_extra={"format": "date-time", "pattern": RFC3339},
        description="Event time: an RFC 3339 date-time string with an offset (Z or ±hh:mm). "
        "Refused (out_of_range) when later than the decoding time plus "
        "CRM_PULSE_MAX_EVENT_TIME_SKEW_S (1 day) or earlier than CRM_PULSE_MIN_EVENT_TIME "
        "(1990-01-01).",
    ),
]
OwnerId = Annotated[
    str | None,
    _OwnerText,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 200},
                {
                    "type": "integer",
                    "exclusiveMinimum": -MAX_ABS_INT,
                    "exclusiveMaximum": MAX_ABS_INT,
                },
                {"type": "null"},
            ]
        }
    ),
]

_FIELD_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_STRING_CHARS},
        {"type": "integer", "exclusiveMinimum": -MAX_ABS_INT, "exclusiveMaximum": MAX_ABS_INT},
        {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "maxItems": MAX_ITEMS, "items": {"$ref": "#/$defs/FieldValue"}},
        {
            "type": "object",
            "maxProperties": MAX_MEMBERS,
            "propertyNames": {"maxLength": MAX_NAME_CHARS},
            "additionalProperties": {"$ref": "#/$defs/FieldValue"},
        },
    ],
}
_FIELDS_DESCRIPTION = (
    "Record fields: the record after the change, or only the changed fields. Bounds "
    f"(refused as too_large): at most {MAX_MEMBERS} members per object and {MAX_ITEMS} items "
    f"per array, names of at most {MAX_NAME_CHARS} characters, strings of at most "
    f"{MAX_STRING_CHARS} characters, and at most {MAX_DEPTH} path segments below fields "
    f"(fields.a.b has 2). Numbers with a fraction or an exponent must be finite and within "
    f"±{MAX_ABS_NUMBER:.0e} (out_of_range). Integers beyond ±2^53 ({EXACT_INT}) become their "
    "exact decimal string; integers of more than 40 digits are refused (out_of_range). "
    f"amount (money): a number within ±{MAX_ABS_NUMBER:.0e}, or text that, when numeric, is "
    "within it (out_of_range). owner_id: a string, null, or an integer (becomes its string)."
)
Fields = Annotated[
    dict[str, Any],
    AfterValidator(check_fields),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_MEMBERS,
            "propertyNames": {"maxLength": MAX_NAME_CHARS},
            "properties": {
                "amount": {
                    "anyOf": [
                        {"type": "string", "maxLength": MAX_STRING_CHARS},
                        {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER},
                        {"type": "boolean"},
                        {"type": "null"},
                        {"type": "array", "maxItems": MAX_ITEMS},
                        {"type": "object", "maxProperties": MAX_MEMBERS},
                    ]
                },
                "owner_id": {
                    "anyOf": [
                        {"type": "string", "maxLength": MAX_STRING_CHARS},
                        {
                            "type": "integer",
                            "exclusiveMinimum": -MAX_ABS_INT,
                            "exclusiveMaximum": MAX_ABS_INT,
                        },
                        {"type": "null"},
                    ]
                },
            },
            "description": _FIELDS_DESCRIPTION,
        }
    ),
]


class ChangeEvent(BaseModel):
    """A change to one CRM record, keyed on Kafka by ``entity_id``.

    ``fields`` holds the record after the change, or only the changed fields; the engine
    merges it over the record's last known state. ``changed`` names the changed fields
    when the source tells (otherwise the engine diffs against the last known state).
    Strings are trimmed of surrounding white space; ids must keep a non-blank character.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    event_id: Id = Field(description="Idempotency key.")
    source: str = Field(
        min_length=1, max_length=100, pattern=NOT_BLANK, description="Adapter or system name."
    )
    entity: EntityKind = Field(description="Kind of record changed.")
    entity_id: Id = Field(description="Record id in the CRM.")
    op: Op = Field(description="create, update or delete.")
    occurred_at: EventTime
    actor: str | None = Field(None, max_length=200, description="Who made the change.")
    owner_id: OwnerId = Field(
        None, description="Record owner (sales rep); an integer becomes its decimal string."
    )
    fields: Fields = Field(default_factory=dict)
    changed: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] | None = Field(
        None, max_length=MAX_ITEMS, description="Names of the changed fields."
    )
    snapshot: bool = Field(
        False,
        strict=True,
        description="True: the record's state as read by a source's initial snapshot "
        "(Debezium op r), not a change someone made. The engine stores it and the KPIs count "
        "it, but no rule judges it (a first sync of 100k rows raises no alert).",
    )

    @cached_property
    def epoch(self) -> float:
        """``occurred_at`` in epoch seconds, computed once per event (the decoder's time
        check, the engine's ordering, the KPI facts and the rules all read it; a parsed
        time's ``timestamp()`` costs about 0.4 µs). Not a field: never serialised. Kept in
        the instance's ``__dict__``, so a ``model_copy`` that changes ``occurred_at`` would
        carry it stale: events are built, never copied."""
        return self.occurred_at.timestamp()


def change_event_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ChangeEvent`, with the recursive ``FieldValue`` bounds."""
    schema = ChangeEvent.model_json_schema()
    schema.setdefault("$defs", {})["FieldValue"] = _FIELD_VALUE
    schema["properties"]["fields"]["additionalProperties"] = {"$ref": "#/$defs/FieldValue"}
    return schema
