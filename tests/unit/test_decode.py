"""The input contract at decoding: each poison pill of the hostile-input report, the bounds
of docs/events.md, and the closed list of dead-letter reasons (code, schema and docs)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from streams.contracts.deadletter import DeadLetter, DeadLetterReason
from streams.contracts.events import ChangeEvent
from streams.contracts.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_STRING_CHARS
from streams.decode import DecodeLimits, RawRecord, Refusal, dead_letter, decode_event
from streams.schemas import all_schemas
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
R = DeadLetterReason
SCHEMA = Draft202012Validator(all_schemas()["change-event.schema.json"])


def body(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e-1", "source": "crm", "entity": "deal", "entity_id": "D-1",
        "op": "update", "occurred_at": "2026-03-02T08:00:00+00:00", "owner_id": "rep-7",
        "fields": {"stage": "Proposal"},
    }  # fmt: skip
    event.update(overrides)
    return event


def decode(value: dict[str, Any] | bytes, limits: DecodeLimits | None = None) -> Any:
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    raw = RawRecord("crm.events", 0, 7, b"k", data)
    return decode_event(raw, NOW, limits or DecodeLimits())


def refused(value: dict[str, Any] | bytes, reason: R, field: str | None) -> Refusal:
    outcome = decode(value)
    assert isinstance(outcome, Refusal), outcome
    assert (outcome.reason, outcome.field) == (reason, field), outcome
    return outcome


def one(name: str, json_value: str) -> bytes:
    """An event whose ``fields`` holds one value given as JSON text."""
    return text('{"' + name + '": ' + json_value + "}")


def text(fields: str) -> bytes:
    """An event whose ``fields`` is given as JSON text (for numbers orjson would not write)."""
    return orjson.dumps(body(fields={})).replace(b'"fields":{}', b'"fields":' + fields.encode())


# --- the poison pills -------------------------------------------------------------------


def test_a_21_digit_integer_survives_as_its_exact_string() -> None:
    event = decode(text('{"external_id": 123456789012345678901, "n": -9007199254740993}'))
    assert isinstance(event, ChangeEvent)
    assert event.fields == {"external_id": "123456789012345678901", "n": "-9007199254740993"}
    assert orjson.loads(orjson.dumps(event.fields)) == event.fields  # orjson writes it


def test_integers_within_2_pow_53_stay_numbers() -> None:
    event = decode(text('{"a": 9007199254740992, "b": -9007199254740992, "c": 0}'))
    assert isinstance(event, ChangeEvent)
    assert event.fields == {"a": 2**53, "b": -(2**53), "c": 0}


@pytest.mark.parametrize("number", ["1e18", "1e30", "-1e308", "1e400", "1000000000000000.5"])
def test_amounts_beyond_1e15_are_out_of_range_with_their_path(number: str) -> None:
    refused(one("amount", number), R.OUT_OF_RANGE, "fields.amount")


def test_an_amount_of_1e15_passes_and_its_cents_fit_64_bits() -> None:
    event = decode(text('{"amount": 1e15, "other": -1e15}'))
    assert isinstance(event, ChangeEvent) and event.fields["amount"] == 1e15
    orjson.dumps(int(event.fields["amount"] * 100))  # cents within int64


@pytest.mark.parametrize(
    "amount", ["123456789012345678901", "2000000000000000", '"1e30"', '"Infinity"', '" 2e15 "']
)
def test_money_as_a_large_integer_or_numeric_text_is_out_of_range(amount: str) -> None:
    refused(one("amount", amount), R.OUT_OF_RANGE, "fields.amount")


@pytest.mark.parametrize("amount", ['"TBD"', '"4200.50"', "null", "true", '""'])
def test_money_text_that_is_no_number_or_within_range_passes(amount: str) -> None:
    assert isinstance(decode(one("amount", amount)), ChangeEvent)


def test_numbers_deep_in_fields_are_bounded_with_the_full_path() -> None:
    refused(
        text('{"lines": [{"price": 1}, {"price": 1e18}]}'), R.OUT_OF_RANGE, "fields.lines.1.price"
    )


def test_an_integer_over_40_digits_is_out_of_range() -> None:
    refused(one("id", str(10**40)), R.OUT_OF_RANGE, "fields.id")
    assert isinstance(decode(one("id", str(10**40 - 1))), ChangeEvent)


def test_a_900k_character_name_is_too_large_before_parsing() -> None:
    outcome = refused(body(fields={"name": "x" * 900_000}), R.TOO_LARGE, None)
    assert str(MAX_EVENT_BYTES) in outcome.detail
    # checked before parsing: an oversized record that is not even JSON is too_large too
    refused(b"{" * (MAX_EVENT_BYTES + 1), R.TOO_LARGE, None)


def test_a_string_over_the_cap_is_too_large_with_its_path() -> None:
    refused(body(fields={"name": "x" * (MAX_STRING_CHARS + 1)}), R.TOO_LARGE, "fields.name")
    assert isinstance(decode(body(fields={"name": "é" * MAX_STRING_CHARS})), ChangeEvent)


def test_the_byte_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PULSE_MAX_EVENT_BYTES", "2048")
    limits = DecodeLimits.from_settings(Settings())
    assert limits.max_event_bytes == 2048
    outcome = decode(body(fields={"note": "x" * 3000}), limits)
    assert isinstance(outcome, Refusal) and outcome.reason is R.TOO_LARGE


def test_numbers_that_grow_when_written_cannot_overflow_the_byte_limit() -> None:
    """``1E15`` is 4 bytes read and 18 written: the event as written must still fit."""
    limits = DecodeLimits(max_event_bytes=4096)
    data = text("[" + ",".join(["1E15"] * 500) + "]").replace(b'"fields":[', b'"fields":{"a":[')
    data = data[:-1] + b"}}"
    assert len(data) < 4096
    outcome = decode(data, limits)
    assert isinstance(outcome, Refusal) and outcome.reason is R.TOO_LARGE, outcome


def test_an_owner_id_that_is_a_number_becomes_its_string() -> None:
    event = decode(body(owner_id=12345, fields={"owner_id": 12345, "big": 2**60}))
    assert isinstance(event, ChangeEvent)
    assert event.owner_id == "12345" and event.fields["owner_id"] == "12345"
    big = decode(text('{"owner_id": 123456789012345678901}'))
    assert isinstance(big, ChangeEvent) and big.fields["owner_id"] == "123456789012345678901"


@pytest.mark.parametrize("owner", ["1.5", "true", "[1]", '{"id": 1}'])
def test_an_owner_id_of_another_type_is_an_invalid_field(owner: str) -> None:
    refused(one("owner_id", owner), R.INVALID_FIELD, "fields.owner_id")


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-12:00", "2099-01-01T00:00:00Z",
     "2026-03-03T09:00:01+00:00", "1989-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"],
)  # fmt: skip
def test_event_times_beyond_the_skew_or_before_the_horizon_are_out_of_range(when: str) -> None:
    refused(body(occurred_at=when), R.OUT_OF_RANGE, "occurred_at")


@pytest.mark.parametrize(
    "when", ["2026-03-03T08:59:59Z", "2016-10-20T00:00:00+00:00", "1990-01-01T00:00:00Z",
             "2026-03-02T10:00:00.123456789+05:30", "2026-03-02t09:00:00z"],
)  # fmt: skip
def test_event_times_within_the_window_pass(when: str) -> None:
    """Up to one day ahead of the clock; back to 1990, so the 2016-2017 CRM sample replays."""
    assert isinstance(decode(body(occurred_at=when)), ChangeEvent)


def test_the_time_window_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PULSE_MAX_EVENT_TIME_SKEW_S", "60")
    monkeypatch.setenv("CRM_PULSE_MIN_EVENT_TIME", "2020-01-01T00:00:00Z")
    limits = DecodeLimits.from_settings(Settings())
    for when in ("2026-03-02T09:02:00Z", "2019-12-31T00:00:00Z"):
        outcome = decode(body(occurred_at=when), limits)
        assert isinstance(outcome, Refusal) and outcome.reason is R.OUT_OF_RANGE


def test_the_horizon_setting_needs_an_offset() -> None:
    with pytest.raises(ValueError, match="min_event_time"):
        Settings(min_event_time="1990-01-01T00:00:00")  # type: ignore[arg-type]


def test_the_event_cap_must_leave_room_under_the_brokers_message_limit() -> None:
    """A source writes events up to ``max_event_bytes`` to the input topic: a cap above
    the broker's limit (less the dead letter's room) is refused at start, naming both."""
    small = {"max_message_bytes": 128 * 1024, "state_max_bytes": 64 * 1024}
    Settings(**small, max_event_bytes=112 * 1024)  # exactly fits
    with pytest.raises(ValueError, match="max_event_bytes must be at most max_message_bytes"):
        Settings(**small, max_event_bytes=112 * 1024 + 1)


@pytest.mark.parametrize(
    "when", [1772442840, "1772442840", "1772442840.5", "2026-03-02", "2026-03-02T09:00:00",
             "2026-03-02 09:00:00+00:00", "2026-03-02T09:00:00+0100", None, [2026]],
)  # fmt: skip
def test_event_times_must_be_rfc3339_text_with_an_offset(when: Any) -> None:
    outcome = refused(body(occurred_at=when), R.INVALID_FIELD, "occurred_at")
    assert "RFC 3339" in outcome.detail or "timezone" in outcome.detail


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(token: str) -> None:
    refused(one("amount", token), R.INVALID_JSON, None)


def test_the_words_nan_and_infinity_inside_strings_are_fine() -> None:
    event = decode(body(fields={"note": "NaN Infinity -Infinity"}))
    assert isinstance(event, ChangeEvent) and event.fields["note"] == "NaN Infinity -Infinity"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200, 5000])
def test_deep_nesting_is_too_large_not_invalid_json(depth: int) -> None:
    nested = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    outcome = decode(one("deep", nested))
    assert isinstance(outcome, Refusal) and outcome.reason is R.TOO_LARGE, outcome
    assert outcome.field is None or outcome.field.startswith("fields.deep")


def test_nesting_up_to_the_cap_passes() -> None:
    nested = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)
    assert isinstance(decode(one("deep", nested)), ChangeEvent)


@pytest.mark.parametrize("blank", ["   ", "\t\n", "\u3000", "\xa0", "\x85", ""])
@pytest.mark.parametrize("name", ["event_id", "entity_id", "source"])
def test_blank_ids_are_refused_by_the_code_and_by_the_schema(name: str, blank: str) -> None:
    refused(body(**{name: blank}), R.INVALID_FIELD, name)
    assert not SCHEMA.is_valid(body(**{name: blank}))


def test_ids_with_a_visible_character_pass_both_trimmed() -> None:
    event = decode(body(entity_id="  D-9 ", event_id="\ufeff"))
    assert isinstance(event, ChangeEvent) and event.entity_id == "D-9"
    assert SCHEMA.is_valid(body(entity_id="  D-9 ", event_id="\ufeff"))


def test_what_decoding_accepts_the_schema_accepts() -> None:
    event = decode(text('{"external_id": 123456789012345678901, "owner_id": 7, "a": [1.5]}'))
    assert isinstance(event, ChangeEvent)
    assert SCHEMA.is_valid(event.model_dump(mode="json"))


def test_the_other_reasons() -> None:
    refused(b"", R.EMPTY_VALUE, None)
    refused(b"{not json", R.INVALID_JSON, None)
    refused(b"[1, 2]", R.INVALID_EVENT, None)
    missing = body()
    del missing["entity_id"]
    refused(missing, R.MISSING_FIELD, "entity_id")
    refused(body(entity="spaceship"), R.INVALID_FIELD, "entity")


# --- one closed list of reasons ---------------------------------------------------------


def documented_reasons(path: Path) -> list[str]:
    """The first cells of the table whose header is ``| reason | ...`` in a Markdown file."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*reason\s*\|", line))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip().strip("`"))
    return rows


@pytest.mark.parametrize("doc", ["README.md", "docs/events.md"])
def test_the_docs_list_exactly_the_reasons_of_the_code(doc: str) -> None:
    assert documented_reasons(REPO / doc) == [reason.value for reason in DeadLetterReason]


def test_the_schema_publishes_the_reasons_as_a_closed_enum() -> None:
    schema = all_schemas()["dead-letter.schema.json"]
    assert schema["$defs"]["DeadLetterReason"]["enum"] == [r.value for r in DeadLetterReason]
    with pytest.raises(ValueError):
        DeadLetter(reason="bad_luck", detail="", topic="t", partition=0, offset=0,  # type: ignore[arg-type]
                   failed_at=NOW)  # fmt: skip


def test_the_contract_code_names_only_enum_reasons() -> None:
    """Every reason literal raised by the contract code is a member of the enum."""
    members = {r.value for r in DeadLetterReason}
    found = set()
    for name in ("streams/contracts/limits.py", "streams/contracts/events.py", "streams/decode.py"):
        for node in ast.walk(ast.parse((REPO / name).read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in ("bound_error", "_Bound")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(node.args[0].value)
    assert found and found <= members, found - members


def test_a_dead_letter_carries_the_reason_header_value() -> None:
    raw = RawRecord("crm.events", 1, 9, b"k", b"NaN")
    outcome = decode_event(raw, NOW)
    assert isinstance(outcome, Refusal)
    dead = dead_letter(raw, outcome, NOW)
    assert dead.reason.encode() == b"invalid_json"
    assert orjson.loads(dead.model_dump_json())["reason"] == "invalid_json"


def test_refusals_name_the_time_they_were_judged_against() -> None:
    late = decode(body(occurred_at=(NOW + timedelta(days=2)).isoformat()))
    assert isinstance(late, Refusal) and NOW.isoformat() in late.detail
