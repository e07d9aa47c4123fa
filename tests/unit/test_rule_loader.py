from __future__ import annotations

from typing import get_args

from streams.rules.loader import load_text
from streams.rules.model import Rule
from streams.rules.registry import REGISTRY


def problems(text: str) -> list[tuple[int | None, str | None, str]]:
    return [(p.line, p.rule_id, p.field) for p in load_text(text, "f.yaml").problems]


def test_errors_name_line_and_field() -> None:
    text = """rules:
  - id: a
    type: transition
    field: amount
    change: increased
    message: m
  - id: b
    type: condition
    condition: "deal.amount <= "
    message: m
  - id: c
    type: required_fields
    fields: [amount]
    severity: loud
    message: m
  - id: d
    type: nope
    message: m
"""
    assert problems(text) == [
        (5, "a", "change"),
        (9, "b", "condition"),
        (14, "c", "severity"),
        (17, "d", "type"),
    ]


def test_unknown_template_placeholder_is_refused() -> None:
    text = "id: x\ntype: condition\ncondition: 'true'\nmessage: 'hi {boss.name}'\n"
    assert problems(text) == [(4, "x", "message")]


def test_yaml_syntax_error_has_line() -> None:
    assert problems("rules:\n  - id: [unclosed\n") == [(3, None, "(yaml)")]


def test_duplicate_ids_refused() -> None:
    rule = "- id: same\n  type: condition\n  condition: 'true'\n  message: m\n"
    assert problems(rule + rule) == [(5, "same", "id")]


def test_several_documents_and_forms() -> None:
    text = "id: one\ntype: condition\ncondition: 'true'\nmessage: m\n---\n" + (
        "- id: two\n  type: condition\n  condition: 'false'\n  message: m\n"
    )
    result = load_text(text)
    assert result.ok and [r.rule.id for r in result.rules] == ["one", "two"]


def test_union_and_registry_are_in_step() -> None:
    union = get_args(get_args(Rule)[0])
    names = {get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert names == set(REGISTRY)
