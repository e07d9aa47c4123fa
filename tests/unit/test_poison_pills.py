"""Each poison pill of issue 12, alone, through the pure ingest path: nothing raises, every
record is applied or dead-lettered with a reason, and every output fits the limits.

The input contract (streams/contracts/limits.py) now refuses several pills at decoding;
for each of those the downstream guard they used to reach (state cap, alert text cap,
KPI facts check) is proven again with input that passes the contract and reaches it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.agents import kpi_facts as kpi_agent
from streams.contracts.alerts import AlertEvent
from streams.contracts.limits import MAX_EVENT_BYTES, MAX_STRING_CHARS
from streams.decode import RawRecord
from streams.judge.batch import PROCESSING_ERROR
from streams.judge.state import STATE_MAX_BYTES, decode_dict, encode_dict, record_key
from streams.outputs import value_budget
from tests.unit.poison import MAX_MESSAGE_BYTES, Pipeline, change_event, poison_pills

PILLS = dict(poison_pills())

#: ``(reason, field)`` of every record of a pill the input contract refuses (``None``: the
#: whole record). The other pills are accepted (a big integer becomes text, an integer
#: owner id becomes text) and must reach the downstream stages without harm.
REFUSED: dict[str, list[tuple[str, str | None]]] = {
    "amount 1e18": [("out_of_range", "fields.amount")],
    "amount 1e30": [("out_of_range", "fields.amount")],
    "amount -1e308": [("out_of_range", "fields.amount")],
    # the 900,000-character create is over the per-event byte limit; the move is applied
    "900k name then backwards": [("too_large", None)],
    "two 600 KB fields": [("too_large", None), ("too_large", None)],
    "NaN": [("invalid_json", None)],
    "Infinity": [("invalid_json", None)],
}

#: A field value as long as the contract allows, rounded down (a 16,000-character text).
LONG = 16_000
assert LONG <= MAX_STRING_CHARS


def _refusals(pipe: Pipeline, *values: bytes) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for value in values:
        out += [(dead.reason.value, dead.field) for _, dead in pipe.send(value).dead]
    return out


@pytest.mark.parametrize("name", sorted(PILLS))
def test_poison_pill_never_raises_and_every_record_is_accounted(name: str) -> None:
    pipe = Pipeline()
    assert _refusals(pipe, *PILLS[name]) == REFUSED.get(name, [])
    assert pipe.accepted + pipe.duplicates + pipe.not_applied + sum(pipe.dead.values()) == len(
        PILLS[name]
    )
    # the worker goes on: a good event afterwards raises its alert
    pipe.send(change_event(100, "GOOD", "create", stage="Negotiation", name="Good"))
    pipe.send(change_event(101, "GOOD", stage="Prospecting", minutes=5))
    assert [a.rule_id for a in pipe.alerts if a.subject.id == "GOOD"].count(
        "deal-stage-backwards"
    ) == 1


def test_big_integer_is_kept_as_text_in_the_state() -> None:
    pipe = Pipeline()
    (value,) = PILLS["21-digit int"]
    result = pipe.send(value)
    assert not result.dead
    state = decode_dict(pipe.state[record_key("deal", "P1")])
    assert state is not None and state["f"]["external_id"] == "123456789012345678901"


@pytest.mark.parametrize("name", ["amount 1e18", "amount 1e30", "amount -1e308"])
def test_huge_amounts_are_refused_by_the_contract(name: str) -> None:
    # Changed with the input contract: these amounts used to be applied and left out of
    # the KPIs; now they are refused at decoding, so no stage after it sees them (the KPI
    # readers' own guards against huge amounts are unit-tested on the KPI side).
    pipe = Pipeline()
    result = pipe.send(*PILLS[name])
    ((_, dead),) = result.dead
    assert (dead.reason.value, dead.field) == ("out_of_range", "fields.amount")
    assert pipe.accepted == 0 and not result.changes and not result.writes


def test_the_largest_amount_the_contract_accepts_is_applied_and_skipped_by_the_kpis() -> None:
    # 1e15 is within the contract (money exact to the cent) but beyond the KPIs' own
    # MAX_AMOUNT: the record is applied, its amount counted as unusable, nothing raises.
    pipe = Pipeline()
    result = pipe.send(change_event(1, "D1", "create", stage="Prospecting", amount=1e15))
    assert not result.dead and len(result.changes) == 1
    state = decode_dict(pipe.state[record_key("deal", "D1")])
    assert state is not None and state["f"]["amount"] == 1e15
    facts = b"".join(result.changes[0].derived["kpi_facts"].facts.values())  # encoded
    assert b'"open":1' in facts and b"open_cents" not in facts
    assert pipe.skips.counts[("extract", "unusable_amount")] >= 1


def test_900k_name_is_refused_whole_by_the_contract() -> None:
    # Changed with the input contract: the 900,000-character create is over the per-event
    # byte limit and refused whole; the alert text cap is proven below with a name the
    # contract accepts.
    pipe = Pipeline()
    create, move = PILLS["900k name then backwards"]
    assert len(create) > MAX_EVENT_BYTES
    ((_, dead),) = pipe.send(create).dead
    assert (dead.reason.value, dead.field) == ("too_large", None)
    assert "900204 bytes" in dead.detail
    assert not pipe.send(move).dead  # the next event of the record is applied
    assert record_key("deal", "P5") in pipe.state


def test_longest_accepted_name_then_backwards_move_ships_a_capped_alert() -> None:
    pipe = Pipeline()
    name = "x" * LONG
    assert not pipe.send(change_event(5, "D5", "create", stage="Negotiation", name=name)).dead
    assert not pipe.send(change_event(6, "D5", stage="Qualification", minutes=1)).dead
    (back,) = [a for a in pipe.alerts if a.rule_id == "deal-stage-backwards"]
    # the name renders twice (title and message): 32,000 characters without the cap
    assert len(back.message) <= 4_000 and len(back.title) <= 1_000
    assert back.message.startswith("Deal xxx") and "…" in back.message
    assert back.message.endswith("(D5) moved back from Negotiation to Qualification (3 stage(s)).")
    assert len(back.model_dump_json()) < 10_000
    state = decode_dict(pipe.state[record_key("deal", "D5")])
    assert state is not None and state["f"]["name"] == name and "cut" not in state
    assert state["f"]["stage"] == "Qualification"


def test_two_600kb_fields_are_refused_whole_by_the_contract() -> None:
    # Changed with the input contract: each event is over the per-event byte limit, so
    # neither reaches the state; the state cap is proven below with accepted events.
    pipe = Pipeline()
    assert _refusals(pipe, *PILLS["two 600 KB fields"]) == [("too_large", None)] * 2
    assert not pipe.state


def _grow_past_the_state_cap(pipe: Pipeline, entity_id: str) -> list[int]:
    """Accepted updates, each adding a 16,000-character field, until the merged state of
    ``entity_id`` passes the cap; returns the event sizes."""
    sizes = []
    pipe.send(change_event(0, entity_id, "create", stage="Prospecting", name="Acme"))
    for n in range(1, STATE_MAX_BYTES // LONG + 3):
        value = change_event(n, entity_id, minutes=n, **{f"note_{n:02d}": chr(96 + n % 26) * LONG})
        assert not pipe.send(value).dead
        sizes.append(len(value))
    return sizes


def test_many_accepted_long_fields_merge_into_a_state_under_the_cap() -> None:
    pipe = Pipeline()
    sizes = _grow_past_the_state_cap(pipe, "D6")
    assert max(sizes) < MAX_EVENT_BYTES  # every event passed the contract
    assert sum(sizes) > STATE_MAX_BYTES  # together they are over the state cap
    key = record_key("deal", "D6")
    blob = pipe.state[key]
    state = decode_dict(blob)
    assert state is not None and len(blob) <= STATE_MAX_BYTES
    # the changelog write (state plus key) fits the broker's message limit
    assert len(blob) <= value_budget(MAX_MESSAGE_BYTES, key)
    assert state["cut"] and set(state["cut"]) <= {f"note_{n:02d}" for n in range(1, 40)}
    for name in state["cut"]:
        assert "[cut: " in state["f"][name]
    kept = [k for k in state["f"] if k.startswith("note_") and k not in state["cut"]]
    assert kept and all(len(state["f"][k]) == LONG for k in kept)
    assert state["f"]["stage"] == "Prospecting" and state["f"]["name"] == "Acme"


def test_alert_contract_turns_dirty_ids_into_text_and_caps_texts() -> None:
    base = orjson.loads(AlertEvent(
        alert_id="a", status="FIRING", rule_id="r", rule_version=1, severity="info",
        subject={"kind": "entity", "entity": "deal", "id": "D1"}, title="t", message="m",
        fired_at="2026-03-02T09:00:00+00:00",
    ).model_dump_json())  # fmt: skip
    dirty = {**base, "owner_id": 12345, "escalated_to": 7.5, "title": "t" * 5_000,
             "message": "m" * 50_000, "evidence": {"old": "o" * 900_000, "n": 10**30,
                                                   "deep": [[[1]]] * 10_000}}  # fmt: skip
    alert = AlertEvent.model_validate(dirty)
    assert alert.owner_id == "12345" and alert.escalated_to == "7.5"
    assert len(alert.title) == 1_000 and alert.title.endswith("…")
    assert len(alert.message) == 4_000
    assert "[cut: " in alert.evidence["old"] and alert.evidence["n"] == "1" + "0" * 30
    assert alert.evidence["deep"].startswith("[cut: ")
    assert len(alert.model_dump_json()) < 25_000


def test_a_failing_stage_dead_letters_the_record_and_the_batch_goes_on() -> None:
    pipe = Pipeline(expect_processing_errors=True)

    def explode(change: object) -> None:
        if getattr(change, "after", {}).get("name") == "boom":
            raise RuntimeError("cannot")

    pipe.engine.change_checks.append(("kpi_test", explode))
    result = pipe.send(
        change_event(1, "D1", "create", stage="Won"),  # fires deal-won-zero-amount…
        change_event(2, "D2", "create", stage="Won", name="boom"),  # …and fails
        change_event(3, "D3", "create", stage="Negotiation", name="ok"),
    )
    ((raw, dead),) = result.dead
    assert raw.offset == 2 and dead.reason == PROCESSING_ERROR
    assert dead.detail.startswith("kpi_test: RuntimeError")
    assert result.stats.processing_errors == {"kpi_test": 1}
    assert sum(result.stats.events.values()) == 2
    assert {a.subject.id for a in result.alerts} == {"D1", "D3"}  # D2's alerts taken back
    assert {c.event.entity_id for c in result.changes} == {"D1", "D3"}
    assert record_key("deal", "D2") not in result.writes


def test_an_unreadable_stored_state_dead_letters_its_records_only() -> None:
    pipe = Pipeline(expect_processing_errors=True)
    pipe.state[record_key("deal", "D9")] = b"{broken"
    pipe.state[record_key("deal", "D8")] = encode_dict({"f": {}, "ids": 5})  # not a list
    result = pipe.send(
        change_event(1, "D9", stage="Won"), change_event(2, "D8", stage="Won"),
        change_event(3, "D7", "create", stage="Prospecting"),
    )  # fmt: skip
    assert [(r.offset, d.reason, d.detail.split(":")[0]) for r, d in result.dead] == [
        (1, PROCESSING_ERROR, "state_decode"), (2, PROCESSING_ERROR, "apply"),
    ]  # fmt: skip
    assert list(result.writes) == [record_key("deal", "D7")]


def test_oversized_record_value_is_cut_on_the_dead_letter_topic() -> None:
    from streams.decode import Refusal, dead_letter
    from streams.outputs import dead_letter_record
    from tests.unit.poison import T0

    raw = RawRecord("crm.events", 0, 1, b"k", b"x" * 2_000_000)
    dead = dead_letter(raw, Refusal("invalid_json", "f" * 5_000, "d" * 100_000), T0)
    value, headers, cut = dead_letter_record(raw.key, raw.value, dead, 1_048_576)
    assert cut and value is not None and len(value) < 1_048_576 - 8_000
    assert dict(headers)["crm-pulse-cut"] == b"2000000"
    assert len(dict(headers)["crm-pulse-error"]) < 3_000


def test_state_cap_cuts_the_largest_fields_first() -> None:
    state = {"f": {"small": "s", "a": "a" * 300_000, "b": "b" * 400_000, "n": list(range(10))}}
    blob = encode_dict(state, max_bytes=350_000)
    decoded = orjson.loads(blob)
    assert len(blob) <= 350_000 and decoded["cut"] == ["b"]
    assert decoded["f"]["a"] == "a" * 300_000 and decoded["f"]["small"] == "s"
    everything = encode_dict({"f": {f"k{i}": "v" * 5_000 for i in range(100)}}, 10_000)
    assert len(everything) <= 10_000 and orjson.loads(everything)["cut"]


def test_facts_messages_are_split_by_size_too() -> None:
    from streams.agents.kpi_facts import (
        FACTS_MESSAGE_BYTES,
        encoded_by_scope,
        facts_records,
        read_facts,
    )

    fact = [[0, 1], 20_000, [["t", "s" * 30_000, "Won"]], {}]
    by_scope = {"global:all": [fact] * 40, "owner:x": [[[0, 2], 1, [], {"1": {"n": 10**30}}]]}
    # both scopes on one partition: the big one is split, the small one rides in the last
    messages = list(facts_records(encoded_by_scope(by_scope), lambda key: 3, 1.0))
    sizes = [len(v) for *_, v in messages]
    assert all(size <= FACTS_MESSAGE_BYTES + 31_000 for size in sizes) and len(messages) >= 5
    assert {p for p, *_ in messages} == {3}
    decoded = [read_facts(k, v)[0] for _, k, v in messages]
    assert sum(len(facts) for scopes in decoded for scope, facts in scopes) == 41
    assert [scope for scope, _ in decoded[-1]] == ["global:all", "owner:x"]
    assert decoded[-1][-1][1][0][3] == {"1": {"n": "1" + "0" * 30}}  # never raises


def test_a_huge_stage_is_refused_by_the_contract() -> None:
    # Changed with the input contract: a 50,000-character stage used to reach the KPI facts
    # check; now it is refused at decoding with the field named.
    pipe = Pipeline()
    pipe.send(change_event(1, "D1", "create", stage="Prospecting"))
    result = pipe.send(change_event(2, "D1", stage="s" * 50_000, minutes=1))
    ((_, dead),) = result.dead
    assert (dead.reason.value, dead.field) == ("too_large", "fields.stage")


def test_kpi_facts_over_their_cap_are_refused_with_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No accepted record reaches the 64 KiB facts cap any more (the contract caps strings
    # and ids, and unknown stages become "(other)"), so the engine's kpi_facts guard is
    # proven with a lower cap that the facts of an ordinary stage move exceed.
    pipe = Pipeline(expect_processing_errors=True)
    pipe.send(change_event(1, "D1", "create", stage="Prospecting", amount=5))
    monkeypatch.setattr(kpi_agent, "FACTS_PER_CHANGE_BYTES", 200)
    result = pipe.send(change_event(2, "D1", stage="Lost", minutes=1))
    ((raw, dead),) = result.dead
    assert raw.offset == 2 and dead.reason == PROCESSING_ERROR
    assert dead.detail.startswith("kpi_facts: ValueError") and "over the 200 cap" in dead.detail
    assert not result.changes and not result.writes


def test_a_field_sent_again_short_is_no_longer_listed_as_cut() -> None:
    pipe = Pipeline()
    _grow_past_the_state_cap(pipe, "D6")
    key = record_key("deal", "D6")
    before = decode_dict(pipe.state[key])
    assert before is not None and before["cut"]
    # the cut fields sent again short, and as many of the long ones emptied, so the
    # merged state is under the cap without cutting anything
    short: dict[str, Any] = {name: "short" for name in before["cut"]}
    long_ones = [k for k in before["f"] if k.startswith("note_") and k not in before["cut"]]
    short.update({name: None for name in long_ones[: len(before["cut"])]})
    assert not pipe.send(change_event(99, "D6", minutes=99, **short)).dead
    state = decode_dict(pipe.state[key])
    assert state is not None and "cut" not in state
    assert all(state["f"][name] == "short" for name in before["cut"])
