"""Property-based tests (hypothesis): every stage of the ingest path is total.

Generated ChangeEvents (valid, edge and hostile: big and huge numbers, NaN/Infinity, long
text, deep nesting, wrong types in known fields, byte flips, duplicates) in random sequences
over a few entity ids go through ``Engine.process`` with the starter rule pack and the KPI
facts check; nothing raises, every input is accepted, a duplicate or a dead letter with a
reason, and every output (state, alert, dead letter, KPI facts message) re-decodes within
the size limits. Renderers and encoders get their own properties.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.alerts import AlertEvent
from streams.jsonbytes import dumps, sanitise
from streams.judge.state import encode_dict
from streams.kpis.facts import to_cents, to_day
from streams.rules.template import MAX_VALUE_CHARS, render
from tests.unit.poison import STAGES, T0, Pipeline

FUZZ = settings(
    deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
LONG = st.sampled_from([2_000, 20_000, 150_000]).map(lambda n: "x" * n) | st.just("é" * 3_000)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=10**18, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e18, 1e30, -1e308, 123456789012345678901, 0, 4200]),
    st.text(max_size=30), LONG, st.sampled_from(STAGES),
    st.sampled_from(["2026-03-02", "2026-13-45", "9999-12-31T23:59:59+00:00", "", " "]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=6,
) | st.integers(0, 9).flatmap(
    lambda roll: st.integers(0, 300).map(nested) if roll == 0 else st.just("plain")
)  # fmt: skip
known = {
    "owner_id": json_values, "amount": json_values, "stage": json_values | st.sampled_from(STAGES),
    "close_date": json_values, "name": json_values, "probability": json_values,
    "external_id": st.integers(min_value=-(10**25), max_value=10**25),
}  # fmt: skip
fields = st.fixed_dictionaries({}, optional=known).flatmap(
    lambda base: st.dictionaries(st.text(max_size=10), json_values, max_size=2).map(
        lambda extra: {**extra, **base}
    )
)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """``valid`` about nine times in ten: most records get past the contract."""
    return st.integers(0, 9).flatmap(lambda roll: hostile if roll == 0 else valid)


events = st.fixed_dictionaries(
    {
        "event_id": mostly(st.sampled_from([f"e{i}" for i in range(40)]), st.text(max_size=250)),
        "source": mostly(st.sampled_from(["fuzz", "crm"]), json_values),
        "entity": mostly(st.sampled_from(["deal", "deal", "lead", "activity"]),
                         st.sampled_from(["task", "robot", ""])),
        "entity_id": st.sampled_from(["D1", "D2", "D3", "L1"]),
        "op": mostly(st.sampled_from(["create", "update", "update", "delete"]),
                     st.sampled_from(["merge", ""])),
        "occurred_at": mostly(st.sampled_from([
            T0.isoformat(), "2026-03-02T10:00:00+00:00", "2026-03-01T09:00:00-12:00",
            "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00",
        ]), st.sampled_from(["2026-03-02T09:00:00", "1772442840"]) | json_values),
        "fields": fields,
    },
    optional={"owner_id": mostly(st.sampled_from(["rep-1", "rep-2"]), json_values),
              "actor": mostly(st.just("u-1"), json_values),
              "changed": mostly(st.just(["stage", "amount"]), json_values)},
)  # fmt: skip


def to_bytes(event: dict[str, Any], flip: int | None) -> bytes:
    data = json.dumps(event).encode()  # writes big ints, NaN and Infinity
    if flip is not None and data:
        i = flip % len(data)
        data = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1 :]
    return data


#: a valid-looking record over the broker's message limit (its dead letter must be cut)
OVER_LIMIT = b'{"event_id": "big", "fields": {"x": "' + b"x" * 1_100_000 + b'"}}'
records = mostly(
    st.tuples(events, mostly(st.none(), st.integers(0, 10**6))).map(lambda p: to_bytes(*p)),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"event_id": NaN}', OVER_LIMIT]),
)


@settings(FUZZ, max_examples=1000)
@given(batches=st.lists(st.lists(records, min_size=1, max_size=5), min_size=1, max_size=3))
def test_engine_is_total_and_accounts_for_every_input(batches: list[list[bytes]]) -> None:
    pipe = Pipeline()
    sent = 0
    for batch in batches:
        pipe.send(*batch)  # checks every output against the limits
        sent += len(batch)
    assert pipe.accepted + pipe.duplicates + pipe.not_applied + sum(pipe.dead.values()) == sent


@settings(FUZZ, max_examples=300)
@given(batches=st.lists(st.lists(records, min_size=1, max_size=4), min_size=2, max_size=3))
def test_engine_is_total_with_a_small_state_cap(batches: list[list[bytes]]) -> None:
    pipe = Pipeline()
    pipe.engine.state_max_bytes = 8_192
    sent = 0
    for batch in batches:
        result = pipe.send(*batch)
        assert all(len(blob) <= 8_192 for _, blob in result.writes.values())
        sent += len(batch)
    assert pipe.accepted + pipe.duplicates + pipe.not_applied + sum(pipe.dead.values()) == sent


templates = st.lists(
    st.sampled_from(["Deal ", "{deal.name}", "[[ {deal.amount}]]", "{evidence.old}", "[[",
                     "]]", "{", "}", "{deal.name.__class__}", "[[{a}{b}]]", "x", "{x!r}"]),
    max_size=12,
).map("".join)  # fmt: skip


@settings(FUZZ, max_examples=2000)
@given(template=templates, deal=st.dictionaries(st.sampled_from(["name", "amount"]), json_values),
       evidence=st.dictionaries(st.sampled_from(["old"]), json_values))  # fmt: skip
def test_render_is_total_and_bounded(template: str, deal: dict[str, Any],
                                     evidence: dict[str, Any]) -> None:  # fmt: skip
    text = render(template, {"deal": deal, "evidence": evidence, "a": 1, "b": None})
    assert len(text) <= len(template) + template.count("{") * MAX_VALUE_CHARS


@settings(FUZZ, max_examples=2000)
@given(value=json_values)
def test_dumps_is_total_and_round_trips(value: Any) -> None:
    decoded = orjson.loads(dumps(value))
    try:
        expected = orjson.loads(orjson.dumps(value))  # the fast path, when orjson can
    except TypeError:
        expected = orjson.loads(orjson.dumps(sanitise(value)))
    assert decoded == expected


@settings(FUZZ, max_examples=1500)
@given(fields=st.dictionaries(st.text(max_size=20), json_values, max_size=8),
       cap=st.integers(4_096, 200_000))  # fmt: skip
def test_encode_state_is_total_and_capped(fields: dict[str, Any], cap: int) -> None:
    blob = encode_dict({"f": fields, "ids": ["e1"], "u": 1.0}, cap)
    assert len(blob) <= cap and isinstance(orjson.loads(blob)["f"], dict)


@settings(FUZZ, max_examples=1500)
@given(owner=json_values, evidence=st.dictionaries(st.text(max_size=300), json_values,
                                                   max_size=20),
       title=st.text(max_size=30) | LONG)  # fmt: skip
def test_alert_contract_is_total_and_bounded(owner: Any, evidence: dict[str, Any],
                                             title: str) -> None:  # fmt: skip
    alert = AlertEvent(
        alert_id="a", status="FIRING", rule_id="r", rule_version=1, severity="info",
        subject={"kind": "entity", "entity": "deal", "id": "D1"}, owner_id=owner,
        title=title, message=title * 3, evidence=evidence, fired_at=T0,
    )  # fmt: skip
    value = alert.model_dump_json().encode()
    assert len(value) < 40_000 and orjson.loads(value)["alert_id"] == "a"
    assert alert.owner_id is None or isinstance(alert.owner_id, str)


@settings(FUZZ, max_examples=2000)
@given(value=json_values)
def test_kpi_value_readers_are_total(value: Any) -> None:
    cents = to_cents(value)
    assert cents is None or abs(cents) <= 10**17
    day = to_day(value)
    assert day is None or abs(day) < 4_000_000
