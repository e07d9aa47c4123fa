"""The declarative mapping source (JMESPath), shown with Pipedrive's webhooks v2."""

from __future__ import annotations

import copy

import orjson
import pytest

from streams.contracts.events import EntityKind, Op
from streams.sources.base import SourceRefusalReason as R
from streams.sources.config import SourceConfigError, parse_sources
from streams.sources.registry import build_translator
from tests.unit.sourcekit import NOW, docs, run

PIPEDRIVE = docs("pipedrive.jsonl")


def test_pipedrive_create_change_won_delete() -> None:
    created, moved, won, deleted = (run("pipedrive", d).events[0] for d in PIPEDRIVE)
    assert created.op is Op.CREATE and created.entity is EntityKind.DEAL
    assert created.entity_id == "4812" and created.owner_id == "13021453"
    assert created.fields["name"] == "Hooli - 20 licences" and created.fields["amount"] == 12000
    assert created.fields["stage"] == "Prospecting" and created.changed is None
    assert created.event_id == "map:3f9e1c2a-7b7d-4d8e-9f0a-1b2c3d4e5f60:4812"
    assert created.occurred_at.isoformat() == "2026-03-02T09:14:00+00:00"
    assert "custom_fields" not in created.fields  # dropped by the starter mapping
    assert moved.op is Op.UPDATE and moved.fields["stage"] == "Proposal"
    assert moved.changed == ["stage", "modified_at"]  # the names of previous, renamed
    assert won.fields["stage"] == "Won"  # status won becomes the stage
    assert deleted.op is Op.DELETE and deleted.entity is EntityKind.CONTACT
    assert deleted.fields == {} and deleted.owner_id == "13021453"


def _source(extra: str = "", event: str = "") -> str:
    return f"""
sources:
  - id: home
    type: mapping
    transport: {{kind: topic, topics: [home.crm]}}
    {extra}
    event:
      object: kind
      entity_id: record.id
      op: what
      fields: record
      {event}
    mapping:
      objects:
        opportunity: {{entity: deal, rename: {{value: amount}}, owner_field: rep}}
"""


def translate(text: str, payload: object) -> tuple[list, list]:  # type: ignore[type-arg]
    (source,) = parse_sources(text).sources
    result = build_translator(source).translate(orjson.dumps(payload), received_at=NOW)
    return result.events, result.refusals


def test_defaults_received_time_and_a_hash_of_the_bytes() -> None:
    payload = {
        "kind": "opportunity",
        "what": "update",
        "record": {"id": 9, "value": 5, "rep": "r1"},
    }
    (event,), _ = translate(_source(), payload)
    assert event.occurred_at == NOW and event.owner_id == "r1"
    assert event.fields == {"id": 9, "amount": 5, "rep": "r1"}
    (again,), _ = translate(_source(), payload)
    assert again.event_id == event.event_id and event.event_id.startswith("map:sha256:")


def test_items_of_a_batch_and_epoch_times() -> None:
    text = _source("items: changes", "occurred_at: at")
    good = {"kind": "opportunity", "what": "create", "record": {"id": 1}, "at": 1772442840000}
    secs = dict(good, at=1772442840, record={"id": 2})
    bad = dict(good, kind="invoice")
    events, refusals = translate(text, {"changes": [good, secs, bad, 7]})
    assert [e.entity_id for e in events] == ["1", "2"]
    assert {e.occurred_at.isoformat() for e in events} == {"2026-03-02T09:14:00+00:00"}
    assert [r.reason for r in refusals] == [R.UNKNOWN_OBJECT, R.INVALID_PAYLOAD]
    assert refusals[0].raw == orjson.dumps(bad) and refusals[0].detail.startswith("item 3 of 4")


def test_mapping_refusals() -> None:
    base = {"kind": "opportunity", "what": "update", "record": {"id": 9}}

    def reason(change: dict, event: str = "") -> R:  # type: ignore[type-arg]
        _, refusals = translate(_source(event=event), {**copy.deepcopy(base), **change})
        return refusals[0].reason

    assert reason({"what": "merge"}) is R.UNSUPPORTED_OPERATION
    assert reason({"kind": None}) is R.UNKNOWN_OBJECT
    assert reason({"record": {"id": " "}}) is R.MISSING_ID
    assert reason({}, "changed: record") is R.INVALID_PAYLOAD
    assert reason({"at": "yesterday"}, "occurred_at: at") is R.MISSING_ID
    assert reason({"names": [1]}, "changed: names") is R.INVALID_PAYLOAD
    assert reason({"at": "2126-01-01T00:00:00Z"}, "occurred_at: at") is R.INVALID_EVENT
    assert reason({"record": {"id": 9, "x": "y" * 20000}}) is R.INVALID_EVENT


def test_bad_expressions_fail_at_load_with_file_line_and_field() -> None:
    with pytest.raises(SourceConfigError) as caught:
        parse_sources(_source(event='actor: "record[?"'), "home.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("home.yaml:12:") and "source 'home'" in problem
    assert "field 'event.actor'" in problem and "JMESPath" in problem


def test_dotted_paths_give_what_jmespath_gives() -> None:
    import jmespath

    from streams.sources.declarative import compile_expression

    docs_ = [{"a": {"b": {"c": 1}}}, {"a": {"b": [1]}}, {"a": [{"b": 1}]}, {"a": None}, {},
             {"a": {"b": {"c": {"d": "x"}}}}, {"a": {"b": {"c": False}}}]  # fmt: skip
    for text in ("a", "a.b", "a.b.c", "a.b.c.d", "x_1.y"):
        fast = compile_expression(text)
        assert not isinstance(fast, jmespath.parser.ParsedResult)
        for doc in docs_:
            assert fast.search(doc) == jmespath.search(text, doc), (text, doc)
    assert isinstance(compile_expression("a[0]"), jmespath.parser.ParsedResult)
