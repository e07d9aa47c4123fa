"""Property-based tests of the input contract: decoding is total and everything it accepts
is within the documented bounds, whatever the bytes (valid, edge and hostile events, byte
flips of valid events, raw bytes).

The main property runs 2,000 examples; the others 300 to 1,000 (counts in each
``@settings``). Decoding uses a small byte limit (4 KiB) so that hypothesis reaches it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from streams.contracts.deadletter import DeadLetterReason
from streams.contracts.events import NOT_BLANK, ChangeEvent
from streams.contracts.limits import (
    EXACT_INT,
    MAX_ABS_NUMBER,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_MEMBERS,
    MAX_NAME_CHARS,
    MAX_STRING_CHARS,
)
from streams.decode import DecodeLimits, RawRecord, Refusal, decode_event
from streams.schemas import all_schemas

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = DecodeLimits(max_event_bytes=4096)
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def examples(count: int) -> settings:
    return settings(FUZZ, max_examples=count)


# --- strategies ------------------------------------------------------------------------

odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(
    [" ", "\t\n", "\u00a0", "\u3000", "\x85", "\ufeff", "\u200b", "\x1f", "é", "😀",
     "NaN", "Infinity", "-Infinity", "1e400", "{}", "null", "0", "\\u0000"]
)  # fmt: skip
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(10**45), max_value=10**45),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e15, -1e15, 1e15 + 1, 1e18, 1e30, -1e308, 2.0**53, 5e-324, -0.0]),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 123456789012345678901, 10**40 - 1, 10**40]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=20,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


hostile_values = st.one_of(
    json_values,
    st.integers(1, 40).map(nested),
    st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 199, 250]).map(nested),
    st.integers(0, 3).map(lambda k: "x" * (MAX_STRING_CHARS - 1 + k)),
    st.integers(0, 3).map(lambda k: list(range(MAX_ITEMS - 1 + k))),
    st.integers(0, 3).map(lambda k: {str(i): i for i in range(MAX_MEMBERS - 1 + k)}),
)
field_names = st.one_of(
    st.sampled_from(["amount", "owner_id", "stage", "name", "close_date", "external_id"]),
    odd_text,
    st.integers(MAX_NAME_CHARS - 1, MAX_NAME_CHARS + 1).map(lambda n: "f" * n),
)
times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, *(timedelta(hours=h) for h in (-12, -5, 5, 14))]).map(
            lambda tz: tz if tz is UTC else __import__("datetime").timezone(tz)
        ),
    ).map(lambda d: d.isoformat()),
    st.sampled_from([
        "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",
        "2099-01-01T00:00:00Z", "1772442840", "2026-03-02", "2026-03-02T09:00:00",
        "2026-03-02 09:00:00+00:00", "2026-03-02T09:00:00.123456789Z", "2026-02-30T00:00:00Z",
        "2016-10-20T00:00:00+00:00", "1989-12-31T23:59:59Z", "2026-03-03T08:59:59Z",
        "2026-03-03T09:00:01Z", "\uff12\uff10\uff12\uff16-03-02T09:00:00Z",
    ]),
    st.integers(-(2**40), 2**40),
    st.floats(),
    st.none(),
)  # fmt: skip
ids = st.one_of(
    st.sampled_from(["D-1", "e-1", " D-2 ", "   ", "\u3000", "\x85", "\ufeff", "", "x" * 201]),
    odd_text,
    st.integers(),
    st.none(),
)


visible = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Cc"]),
                  min_size=1, max_size=30)  # fmt: skip
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "event_id": ids, "source": ids, "entity_id": ids, "owner_id": ids, "actor": ids,
    "entity": st.sampled_from(["spaceship", 7, None, "DEAL", ""]),
    "op": st.sampled_from(["upsert", 1, None, ["create"]]),
    "occurred_at": times,
    "changed": st.one_of(st.lists(odd_text, max_size=3), json_values),
    "fields": json_values,
}  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A ChangeEvent-shaped dict: valid ids and time, fields that are plain, hostile or any
    JSON; then up to two top-level fields replaced by hostile values, one perhaps missing."""
    when = draw(st.datetimes(min_value=datetime(1990, 1, 2), max_value=datetime(2026, 3, 3)))
    event: dict[str, Any] = {
        "event_id": draw(st.one_of(st.uuids().map(str), visible)),
        "source": draw(visible.filter(lambda s: len(s) <= 100)),
        "entity": draw(st.sampled_from(["deal", "lead", "account", "contact", "task"])),
        "entity_id": draw(visible),
        "op": draw(st.sampled_from(["create", "update", "delete"])),
        "occurred_at": when.replace(tzinfo=UTC).isoformat(),
        "owner_id": draw(st.one_of(visible, st.none(), st.integers())),
        "fields": draw(
            st.one_of(
                st.dictionaries(field_names, scalars, max_size=6),
                st.dictionaries(field_names, hostile_values, max_size=3),
            )
        ),
    }
    if draw(st.booleans()):
        event["changed"] = draw(st.lists(visible, max_size=3))
    for name in draw(st.sets(st.sampled_from(sorted(HOSTILE)), max_size=2)):
        event[name] = draw(HOSTILE[name])
    if draw(st.integers(1, 10)) == 7:  # one in ten (away from the bounds hypothesis favours)
        del event[draw(st.sampled_from(sorted(event)))]
    return event


def encoded(event: Any) -> bytes:
    """JSON text, NaN and Infinity included (Python's encoder writes them), exact big ints."""
    return json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def flipped(draw: st.DrawFn) -> bytes:
    """A valid event's bytes with a few bytes overwritten, removed or inserted."""
    data = bytearray(
        orjson.dumps({"event_id": "e-1", "source": "crm", "entity": "deal", "entity_id": "D",
                      "op": "update", "occurred_at": "2026-03-02T08:00:00+00:00",
                      "owner_id": "rep-7", "fields": {"amount": 10.5, "stage": "Won"}})
    )  # fmt: skip
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "drop", "insert"]))
        if action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "drop":
            del data[at]
        else:
            data.insert(at, draw(st.sampled_from(b'{}[]",:0e-.\\NIn \x00\xff')))
    return bytes(data)


raw_bytes = st.one_of(
    events().map(encoded),
    flipped(),
    st.binary(max_size=64),
    st.sampled_from([b"", b"null", b"[]", b"1", b'"x"', b"{}", b"NaN", b"[" * 300 + b"]" * 300]),
    st.integers(1, 300).map(lambda n: b'{"fields":' + b'{"a":' * n + b"1" + b"}" * (n + 1)),
)

# --- the documented bounds, checked independently of the decoder ------------------------


@cache
def schema_validator() -> Draft202012Validator:
    return Draft202012Validator(all_schemas()["change-event.schema.json"])


def within_bounds(value: Any, level: int = 0) -> None:
    """Every value below ``fields`` honours the caps of docs/events.md."""
    if isinstance(value, dict):
        assert len(value) <= MAX_MEMBERS
        assert not value or level < MAX_DEPTH
        for name, item in value.items():
            assert isinstance(name, str) and len(name) <= MAX_NAME_CHARS
            within_bounds(item, level + 1)
    elif isinstance(value, list):
        assert len(value) <= MAX_ITEMS
        assert not value or level < MAX_DEPTH
        for item in value:
            within_bounds(item, level + 1)
    elif isinstance(value, str):
        assert len(value) <= MAX_STRING_CHARS
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert -EXACT_INT <= value <= EXACT_INT
    else:
        assert isinstance(value, float) and math.isfinite(value)
        assert -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER


def check_outcome(data: bytes, limits: DecodeLimits = LIMITS) -> ChangeEvent | Refusal:
    outcome = decode_event(RawRecord("crm.events", 0, 0, b"k", data), NOW, limits)
    assert isinstance(outcome, ChangeEvent | Refusal)
    label(f"outcome: {outcome.reason if isinstance(outcome, Refusal) else 'accepted'}")
    if isinstance(outcome, Refusal):
        assert isinstance(outcome.reason, DeadLetterReason)
        assert outcome.reason is not DeadLetterReason.PROCESSING_ERROR, outcome  # no defect
        assert outcome.detail
        return outcome
    body = outcome.model_dump(mode="json")
    assert len(orjson.dumps(body)) <= limits.max_event_bytes
    assert len(orjson.dumps(outcome.fields)) <= limits.max_event_bytes
    within_bounds(outcome.fields, 0)
    amount = outcome.fields.get("amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        assert abs(amount) <= MAX_ABS_NUMBER
    owner = outcome.fields.get("owner_id")
    assert owner is None or isinstance(owner, str)
    assert outcome.owner_id is None or isinstance(outcome.owner_id, str)
    for text in (outcome.event_id, outcome.entity_id, outcome.source):
        # blank is Unicode White_Space (Python's str.strip also strips \x1c-\x1f)
        assert re.match(NOT_BLANK, text[0]) and re.match(NOT_BLANK, text[-1]), repr(text)
    when = outcome.occurred_at
    assert limits.min_event_time <= when <= NOW + timedelta(seconds=limits.max_event_time_skew_s)
    errors = [e.message for e in schema_validator().iter_errors(body)]
    assert not errors, errors  # what the engine is handed honours the published schema
    return outcome


# --- properties -------------------------------------------------------------------------


@examples(2000)
@given(raw_bytes)
def test_decoding_is_total_and_what_it_accepts_is_within_the_documented_bounds(
    data: bytes,
) -> None:
    check_outcome(data)


@examples(1000)
@given(events())
def test_every_generated_event_is_accepted_or_refused_with_a_documented_reason(
    event: dict[str, Any],
) -> None:
    check_outcome(encoded(event))


@examples(300)
@given(events())
def test_at_the_default_byte_limit_the_caps_inside_fields_decide(event: dict[str, Any]) -> None:
    """With 256 KiB allowed, long strings, wide objects and arrays reach their own caps."""
    check_outcome(encoded(event), DecodeLimits())


@examples(500)
@given(st.dictionaries(field_names, scalars, max_size=8))
def test_plain_valid_events_are_accepted_and_keep_their_values(fields: dict[str, Any]) -> None:
    """Events within every bound are accepted, their values unchanged but normalised ones."""
    fine = {
        name: value
        for name, value in fields.items()
        if len(name) <= MAX_NAME_CHARS
        and name == name.strip()  # names are trimmed: " a" would become "a"
        and not (isinstance(value, float) and not -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER)
        and not (isinstance(value, int) and not -(10**40) < value < 10**40)
        and not (name == "amount" and isinstance(value, int | float | str))
        and not (name == "owner_id" and isinstance(value, float | bool))
    }
    head = {"event_id": "e-1", "source": "crm", "entity": "deal", "entity_id": "D-1"}
    data = encoded({**head, "op": "update", "occurred_at": "2026-03-02T08:00:00Z", "fields": fine})
    outcome = check_outcome(data)
    assert isinstance(outcome, ChangeEvent), outcome
    for name, value in fine.items():
        got = outcome.fields[name]
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (abs(value) > EXACT_INT or name == "owner_id")
        ):
            assert got == str(value)  # exact decimal text
        else:
            assert got == value or (value != value and got != got)


@examples(300)
@given(st.integers(MAX_DEPTH, 190))
def test_nesting_beyond_the_cap_is_too_large_with_the_path(depth: int) -> None:
    data = encoded({"event_id": "e", "source": "s", "entity": "deal", "entity_id": "D",
                    "op": "update", "occurred_at": "2026-03-02T08:00:00Z",
                    "fields": {"deep": nested(depth)}})  # fmt: skip
    outcome = check_outcome(data)
    assert isinstance(outcome, Refusal)
    assert outcome.reason is DeadLetterReason.TOO_LARGE
    assert outcome.field is not None and outcome.field.startswith("fields.deep")
