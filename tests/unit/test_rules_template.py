"""Message templates: safe lookups, no format specs, optional sections, bounded values."""

from __future__ import annotations

from streams.rules.template import MAX_VALUE_CHARS, placeholders, render


def test_render_paths_numbers_and_missing() -> None:
    variables = {"deal": {"name": "Acme", "amount": 1234.5, "n": 3}, "evidence": {}}
    text = "{deal.name}: {deal.amount} x{deal.n}, <{evidence.old}>, <{nothing.here}>"
    assert render(text, variables) == "Acme: 1,234.5 x3, <>, <>"


def test_no_attribute_or_format_tricks() -> None:
    variables = {"deal": {"name": "Acme"}}
    assert render("{deal.name.__class__} {deal.name!r} {deal.name:>10}", variables) == (
        " {deal.name!r} {deal.name:>10}"
    )
    assert placeholders("{a.b} {c} {d!r} [[{e.f}]]") == ["a.b", "c", "e.f"]


def test_optional_section_is_dropped_when_a_value_is_absent_or_blank() -> None:
    text = "Lead[[ {lead.name}]] ({subject.id}) has no email[[, owner {owner.id}]]."
    subject = {"subject": {"id": "L-00000057"}}
    assert render(text, {**subject, "lead": {}, "owner": {"id": "rep-1"}}) == (
        "Lead (L-00000057) has no email, owner rep-1."
    )
    assert render(text, {**subject, "lead": {"name": "  "}, "owner": {}}) == (
        "Lead (L-00000057) has no email."
    )
    assert render(text, {**subject, "lead": {"name": "Ada"}, "owner": {"id": None}}) == (
        "Lead Ada (L-00000057) has no email."
    )


def test_section_keeps_zero_and_false_values() -> None:
    assert render("x[[ = {d.amount}]]", {"d": {"amount": 0}}) == "x = 0"
    assert render("x[[ = {d.flag}]]", {"d": {"flag": False}}) == "x = False"


def test_a_rendered_value_is_never_read_as_a_template() -> None:
    variables = {"deal": {"name": "{subject.id} [[{deal.x}]]"}, "subject": {"id": "D1"}}
    assert render("[[{deal.name}]] / {deal.name}", variables) == (
        "{subject.id} [[{deal.x}]] / {subject.id} [[{deal.x}]]"
    )


def test_each_value_renders_at_most_max_value_chars() -> None:
    text = render("<{deal.name}>", {"deal": {"name": "x" * 900_000}})
    assert len(text) == MAX_VALUE_CHARS + 2
    assert text.endswith("…>")
    assert render("{n}", {"n": 10**50}) == "1.000000e+50"
    assert render("{n}", {"n": float("inf")}) == "inf"
