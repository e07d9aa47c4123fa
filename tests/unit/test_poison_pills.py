"""Each poison pill of issue 12, alone, through the pure ingest path: nothing raises, every
record is applied or dead-lettered with a reason, and every output fits the limits."""

from __future__ import annotations

import orjson
import pytest

from streams.contracts.alerts import AlertEvent
from streams.decode import RawRecord
from streams.engine import PROCESSING_ERROR
from streams.state import STATE_MAX_BYTES, decode_state, encode_state, record_key
from tests.unit.poison import Pipeline, change_event, poison_pills

PILLS = dict(poison_pills())


@pytest.mark.parametrize("name", sorted(PILLS))
def test_poison_pill_never_raises_and_every_record_is_accounted(name: str) -> None:
    pipe = Pipeline()
    for value in PILLS[name]:
        pipe.send(value)
    assert pipe.accepted + pipe.duplicates + sum(pipe.dead.values()) == len(PILLS[name])
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
    state = decode_state(pipe.state[record_key("deal", "P1")])
    assert state is not None and state["f"]["external_id"] == "123456789012345678901"


@pytest.mark.parametrize("name", ["amount 1e18", "amount 1e30", "amount -1e308"])
def test_huge_amounts_are_applied_and_left_out_of_the_kpis(name: str) -> None:
    pipe = Pipeline()
    result = pipe.send(*PILLS[name])
    assert pipe.accepted == 1 and not result.dead and len(result.changes) == 1


def test_900k_name_then_backwards_move_ships_small_alerts_and_a_capped_state() -> None:
    pipe = Pipeline()
    pipe.send(*PILLS["900k name then backwards"])
    (back,) = [a for a in pipe.alerts if a.rule_id == "deal-stage-backwards"]
    assert len(back.model_dump_json()) < 10_000
    assert back.message.startswith("Deal xxx") and "…" in back.message
    blob = pipe.state[record_key("deal", "P5")]
    state = decode_state(blob)
    assert state is not None and len(blob) <= STATE_MAX_BYTES
    assert state["cut"] == ["name"] and "[cut: " in state["f"]["name"]
    assert state["f"]["stage"] == "Qualification"


def test_two_600kb_fields_merge_into_a_state_under_the_cap() -> None:
    pipe = Pipeline()
    pipe.send(*PILLS["two 600 KB fields"])
    blob = pipe.state[record_key("deal", "P6")]
    state = decode_state(blob)
    assert state is not None and len(blob) <= STATE_MAX_BYTES
    assert set(state["cut"]) <= {"notes", "description"} and state["cut"]
    assert state["f"]["stage"] == "Prospecting"


def test_owner_id_number_in_fields_never_drops_the_alerts() -> None:
    pipe = Pipeline()
    result = pipe.send(*PILLS["owner_id number"])
    assert not result.stats.rule_errors
    fired = {a.rule_id for a in result.alerts}
    assert {"deal-won-zero-amount", "deal-name-missing"} <= fired
    assert {a.owner_id for a in result.alerts} == {"12345"}


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
    pipe = Pipeline()

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
    pipe = Pipeline()
    pipe.state[record_key("deal", "D9")] = b"{broken"
    pipe.state[record_key("deal", "D8")] = encode_state({"f": {}, "ids": 5})  # not a list
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
    blob = encode_state(state, max_bytes=350_000)
    decoded = orjson.loads(blob)
    assert len(blob) <= 350_000 and decoded["cut"] == ["b"]
    assert decoded["f"]["a"] == "a" * 300_000 and decoded["f"]["small"] == "s"
    everything = encode_state({"f": {f"k{i}": "v" * 5_000 for i in range(100)}}, 10_000)
    assert len(everything) <= 10_000 and orjson.loads(everything)["cut"]


def test_facts_messages_are_split_by_size_too() -> None:
    from streams.agents.kpis import FACTS_MESSAGE_BYTES, facts_messages

    fact = [[0, 1], 20_000, [["t", "s" * 30_000, "Won"]], {}]
    by_scope = {"global:all": [fact] * 40, "owner:x": [[[0, 2], 1, [], {"1": {"n": 10**30}}]]}
    messages = list(facts_messages(by_scope, 1.0))
    sizes = [len(v) for _, v in messages]
    assert all(size <= FACTS_MESSAGE_BYTES + 31_000 for size in sizes) and len(messages) >= 5
    decoded = [orjson.loads(v) for _, v in messages]
    assert sum(len(d["ev"]) for d in decoded[:-1]) == 40
    assert decoded[-1]["ev"][0][3] == {"1": {"n": "1" + "0" * 30}}  # never raises


def test_kpi_facts_of_a_huge_stage_are_refused_with_the_record() -> None:
    pipe = Pipeline()
    pipe.send(change_event(1, "D1", "create", stage="Prospecting"))
    result = pipe.send(change_event(2, "D1", stage="s" * 50_000, minutes=1))
    ((_, dead),) = result.dead
    assert dead.reason == PROCESSING_ERROR and dead.detail.startswith("kpi_facts: ValueError")


def test_a_field_sent_again_short_is_no_longer_listed_as_cut() -> None:
    pipe = Pipeline()
    pipe.send(*PILLS["two 600 KB fields"])
    pipe.send(change_event(20, "P6", notes="short", description="short too", minutes=2))
    state = decode_state(pipe.state[record_key("deal", "P6")])
    assert state is not None and "cut" not in state
    assert state["f"]["notes"] == "short"
