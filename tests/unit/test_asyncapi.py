"""asyncapi.yaml stays true: every topic of the settings is a channel (and no channel names
an unknown topic), every operation and message reference resolves, every message schema it
references is a file of schemas/ (and the pointer inside it exists), and every public
contract of schemas/ is the message of its topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from streams.runtime.topics import topic_specs
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOC: dict[str, Any] = yaml.safe_load((REPO / "asyncapi.yaml").read_text())

#: The public topic -> the schema file of its message value (or header, for the DLQ).
CONTRACTS = {
    "events_topic": "change-event.schema.json",
    "dlq_topic": "dead-letter.schema.json",
    "alerts_topic": "alert-event.schema.json",
    "notify_dlq_topic": "alert-event.schema.json",
    "rules_topic": "rule.schema.json",
    "silences_topic": "silence.schema.json",
    "kpis_topic": "kpi-snapshot.schema.json",
}


def local(ref: str) -> Any:
    node: Any = DOC
    assert ref.startswith("#/"), ref
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref}: no {part!r}"
        node = node[part]
    return node


def file_refs(node: Any) -> list[str]:
    """Every ``$ref`` to another file under ``node``."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        found = [r for r in found if not r.startswith("#")]
        return found + [r for v in node.values() for r in file_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in file_refs(v)]
    return []


def channel_schema_files(channel: dict[str, Any]) -> set[str]:
    files = set()
    for message in channel["messages"].values():
        resolved = local(message["$ref"]) if "$ref" in message else message
        files |= {Path(ref.split("#")[0]).name for ref in file_refs(resolved)}
    return files


def test_document_is_asyncapi_3() -> None:
    assert DOC["asyncapi"].startswith("3.0")
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert DOC["channels"] and DOC["operations"]


def test_every_settings_topic_is_a_channel_and_no_other() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    addresses = {c["address"] for c in DOC["channels"].values()}
    fixed = {a for a in addresses if not a.startswith("{")}
    assert set(topic_specs(settings)) == fixed
    named = [n for n in dir(Settings) if n.endswith("_topic")]
    assert len(named) >= len(CONTRACTS)
    for name in named:  # every topic the settings name is documented
        assert getattr(settings, name) in fixed, name


def test_public_topics_carry_their_contract() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    by_address = {c["address"]: c for c in DOC["channels"].values()}
    for attribute, schema_file in CONTRACTS.items():
        topic = getattr(settings, attribute)
        assert schema_file in channel_schema_files(by_address[topic]), (topic, schema_file)


def test_every_reference_resolves() -> None:
    for op_id, operation in DOC["operations"].items():
        channel = local(operation["channel"]["$ref"])
        assert "address" in channel, op_id
        for message in operation.get("messages", []):
            local(message["$ref"])
    for channel in DOC["channels"].values():
        for message in channel["messages"].values():
            local(message["$ref"])
    refs = file_refs(DOC)
    assert refs
    for ref in refs:
        path, _, pointer = ref.partition("#")
        target = (REPO / path).resolve()
        assert target.parent == REPO / "schemas" and target.exists(), ref
        node = json.loads(target.read_text())
        for part in [p for p in pointer.split("/") if p]:
            assert part in node, ref
            node = node[part]
        assert isinstance(node, dict) and node, ref


def test_every_public_contract_is_a_message() -> None:
    referenced = {Path(r.split("#")[0]).name for r in file_refs(DOC)}
    assert set(CONTRACTS.values()) <= referenced
    assert {p.name for p in (REPO / "schemas").glob("*.schema.json")} >= referenced


def test_every_channel_is_used_by_an_operation() -> None:
    used = {op["channel"]["$ref"] for op in DOC["operations"].values()}
    assert used == {f"#/channels/{name}" for name in DOC["channels"]}
