"""Property-based tests of the source translators: ``translate`` never raises, whatever the
input (raw bytes, arbitrary JSON, and sample payloads with values replaced at random), and
every input ends as events, refusals, gaps or a skipped tombstone, each event within the
contract and carrying its source id.

Examples per property (the ``fuzz`` settings): 400 each for raw bytes and arbitrary JSON
(the source type drawn among the 4), 500 for mutated samples, 300 for sources-file texts.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.sources.base import SourceRefusalReason, Translation
from tests.unit.sourcekit import DATA, NOW, docs, translator

SOURCES = ("crm-db", "salesforce", "hubspot", "pipedrive")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


SAMPLES = {
    "crm-db": docs("debezium-postgres.jsonl")[:4] + docs("debezium-mysql.jsonl"),
    "salesforce": docs("salesforce.jsonl"),
    "hubspot": [orjson.loads((DATA / "hubspot.json").read_bytes())],
    "pipedrive": docs("pipedrive.jsonl"),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)  # fmt: skip


def check(source_id: str, raw: bytes | None) -> Translation:
    result = translator(source_id).translate(raw, received_at=NOW)  # must not raise
    empty_batch = source_id == "hubspot" and raw == b"[]"  # nothing to translate, no loss
    assert result.events or result.refusals or result.gaps or result.skipped or empty_batch
    for event in result.events:
        assert event.source == source_id and event.event_id and event.entity_id
    for refusal in result.refusals:
        assert isinstance(refusal.reason, SourceRefusalReason) and refusal.detail
        assert isinstance(refusal.raw, bytes)
    return result


@fuzz(400)
@given(source=st.sampled_from(SOURCES), raw=st.binary(max_size=300))
def test_raw_bytes_never_raise(source: str, raw: bytes) -> None:
    check(source, raw)


@fuzz(400)
@given(source=st.sampled_from(SOURCES), value=json_values)
def test_arbitrary_json_never_raises(source: str, value: Any) -> None:
    check(source, orjson.dumps(value))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found.extend(_paths(value, (*prefix, index)))
    return found


@fuzz(500)
@given(data=st.data(), source=st.sampled_from(SOURCES))
def test_samples_with_a_value_replaced_never_raise(data: st.DataObject, source: str) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(SAMPLES[source])))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = data.draw(json_values)
    check(source, orjson.dumps(doc))


@fuzz(300)
@given(
    text=st.one_of(
        st.text(max_size=200),
        json_values.map(lambda v: orjson.dumps({"sources": [v]}).decode()),
        json_values.map(lambda v: orjson.dumps(v).decode()),
    )
)
def test_any_sources_file_text_loads_or_lists_its_problems(text: str) -> None:
    from streams.sources.config import SourceConfigError, SourcesConfig, parse_sources

    try:
        loaded = parse_sources(text, "fuzz.yaml")
    except SourceConfigError as exc:
        assert exc.problems and all(p.startswith("fuzz.yaml") for p in exc.problems)
    else:
        assert isinstance(loaded, SourcesConfig)
