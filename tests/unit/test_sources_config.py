"""The sources file, the closed registry, the refusal reasons and their documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from streams.contracts.deadletter import DeadLetterReason
from streams.sources.base import REASON_MEANINGS, Refusal, SourceRefusalReason, SourceType
from streams.sources.config import SourceConfigError, load_sources, parse_sources
from streams.sources.fieldmap import record_url
from streams.sources.registry import REGISTRY, build_translator
from tests.unit.sourcekit import REPO, config


def problems(text: str) -> list[str]:
    with pytest.raises(SourceConfigError) as caught:
        parse_sources(text, "sources.yaml")
    return caught.value.problems


def test_every_shipped_sources_file_and_starter_mapping_loads() -> None:
    example = load_sources(REPO / "sources" / "sources.example.yaml")
    assert {s.type for s in example.sources} == set(SourceType)
    for source in example.sources:
        assert build_translator(source).source_id == source.id
    assert config().ids == ["crm-db", "salesforce", "hubspot", "pipedrive"]
    salesforce = config().get("salesforce")
    assert salesforce is not None
    assert {"Opportunity", "Lead", "Account", "Contact", "Task", "Event"} <= set(
        salesforce.mapping.objects
    )


def test_unknown_type_is_refused_nothing_is_imported() -> None:
    (problem,) = problems(
        "sources:\n  - id: x\n    type: os.system\n    transport: {kind: topic, topics: [t]}\n"
    )
    assert problem.startswith("sources.yaml:3:") and "field 'type'" in problem
    assert set(REGISTRY) == set(SourceType)


def test_errors_name_file_line_source_and_field() -> None:
    text = """sources:
  - id: sf
    type: salesforce_cdc
    transport: {kind: topic, topics: []}
    mapping:
      objects:
        Opportunity: {entity: opportunity}
  - id: hs
    type: hubspot_webhook
    transport: {kind: http, secret: {env: A, file: /tmp/x}}
"""
    found = problems(text)
    assert any(p.startswith("sources.yaml:4: source 'sf' field 'transport.topics'") for p in found)
    entity = "sources.yaml:7: source 'sf' field 'mapping.objects.Opportunity.entity'"
    assert any(p.startswith(entity) for p in found)
    assert any(p.startswith("sources.yaml:10: source 'hs' field 'transport.secret'") for p in found)


def test_duplicate_ids_bad_templates_and_topic_only_types() -> None:
    one = (
        "  - id: a\n    type: debezium\n    transport: {kind: topic, topics: [t]}\n"
        "    mapping: {objects: {deals: {entity: deal}}}\n"
    )
    (dup,) = problems("sources:\n" + one + one)
    assert "source 'a' field 'id': duplicate id" in dup
    bad_url = (
        "sources:\n  - id: a\n    type: debezium\n    transport: {kind: topic, topics: [t]}\n"
        "    mapping: {objects: {deals: {entity: deal, record_url: 'https://x/{deal_id}'}}}\n"
    )
    (url,) = problems(bad_url)
    assert "record_url" in url and "{id}" in url
    http_debezium = (
        "sources:\n  - id: a\n    type: debezium\n    transport: {kind: http, secret: {env: X}}\n"
    )
    assert any("field 'transport.kind'" in p for p in problems(http_debezium))


def test_include_problems_are_located_in_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("objects:\n  deals: {entity: dael}\n")
    main = tmp_path / "sources.yaml"
    main.write_text(
        "sources:\n  - id: a\n    type: debezium\n    transport: {kind: topic, topics: [t]}\n"
        "    mapping: {include: m.yaml}\n  - id: b\n    type: debezium\n"
        "    transport: {kind: topic, topics: [t]}\n    mapping: {include: nowhere.yaml}\n"
    )
    with pytest.raises(SourceConfigError) as caught:
        load_sources(main)
    first, second = caught.value.problems
    assert first.startswith(f"{tmp_path / 'm.yaml'}:2: field 'objects.deals.entity'")
    assert "source 'b' field 'mapping.include': cannot read" in second


def test_secret_from_env_or_file(tmp_path: Path) -> None:
    from streams.sources.config import SecretRef

    (tmp_path / "s").write_text("from-file\n")
    assert SecretRef(file=tmp_path / "s").read({}).get_secret_value() == "from-file"
    with pytest.raises(SourceConfigError) as caught:
        SecretRef(env="NOT_SET_ANYWHERE").read({})
    assert "NOT_SET_ANYWHERE" in str(caught.value)


def test_record_urls() -> None:
    assert record_url(config(), "crm-db", "deal", "42") == "https://crm.example.com/deals/42"
    url = record_url(config(), "salesforce", "deal", "006A")
    assert url == "https://YOUR-DOMAIN.lightning.force.com/lightning/r/Opportunity/006A/view"
    assert record_url(config(), "salesforce", "activity", "00T1", "Event") is not None
    assert "/Event/00T1/" in str(record_url(config(), "salesforce", "activity", "00T1", "Event"))
    assert record_url(config(), "crm-db", "lead", "1") is None  # no template declared
    assert record_url(config(), "nope", "deal", "1") is None


def test_refusal_reasons_map_to_dead_letter_reasons() -> None:
    for reason in SourceRefusalReason:
        refusal = Refusal(reason, "d", b"x")
        assert isinstance(refusal.dead_letter_reason, DeadLetterReason)
        assert refusal.as_json() == {"reason": reason.value, "detail": "d"}
    assert set(REASON_MEANINGS) == set(SourceRefusalReason)


def test_docs_list_exactly_the_refusal_reasons() -> None:
    text = (REPO / "docs" / "sources.md").read_text()
    section = text.split("## Refusal reasons", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert documented == [r.value for r in SourceRefusalReason]


def test_settings_read_the_sources_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    monkeypatch.setenv("CRM_PULSE_SOURCES_FILE", "sources/sources.example.yaml")
    assert Settings().sources_file == Path("sources/sources.example.yaml")


def test_starter_mappings_speak_the_pipeline_of_the_kpis_and_rules() -> None:
    from streams.settings import DEFAULT_STAGE_ORDER, Settings
    from streams.sources.config import MappingFile

    allowed = set(DEFAULT_STAGE_ORDER) | set(Settings().closed_stages)
    for path in sorted((REPO / "sources").glob("*.yaml")):
        if path.name == "sources.example.yaml":
            continue
        mapping = MappingFile.model_validate(yaml.safe_load(path.read_text()))
        deals = [m for m in mapping.objects.values() if m.entity == "deal"]
        assert deals, path.name
        for deal in deals:
            stage_fields = [crm for crm, ours in deal.rename.items() if ours == "stage"]
            if path.name == "postgres-crm.yaml":
                continue  # columns keep their names: the schema's own stage column
            (stage_field,) = stage_fields
            assert set(deal.values[stage_field].values()) <= allowed, path.name
            assert {"Won", "Lost"} <= set(deal.values[stage_field].values()), path.name
            assert "amount" in deal.rename.values(), path.name
            assert deal.owner_field is not None, path.name
            assert deal.rename.get(deal.owner_field, deal.owner_field) == "owner_id", path.name


def test_numeric_and_boolean_value_keys_are_their_text() -> None:
    text = (
        "sources:\n  - id: a\n    type: debezium\n    transport: {kind: topic, topics: [t]}\n"
        "    mapping: {objects: {deals: {entity: deal, values: {stage_id: {3: Prospecting, "
        "true: Won, 2.0: Engaging}}}}}\n"
    )
    (source,) = parse_sources(text).sources
    table = source.mapping.objects["deals"].values["stage_id"]
    assert table == {"3": "Prospecting", "true": "Won", "2": "Engaging"}


def test_a_source_without_any_mapped_object_is_refused() -> None:
    (problem,) = problems(
        "sources:\n  - id: a\n    type: debezium\n    transport: {kind: topic, topics: [t]}\n"
    )
    assert "source 'a' field 'mapping': no object is mapped" in problem
