"""Message templates: safe lookups, no format specs, ``(none)`` for what is absent."""

from __future__ import annotations

from streams.rules.template import placeholders, render


def test_render_paths_numbers_and_missing() -> None:
    variables = {"deal": {"name": "Acme", "amount": 1234.5, "n": 3}, "evidence": {}}
    text = "{deal.name}: {deal.amount} x{deal.n}, {evidence.old}, {nothing.here}"
    assert render(text, variables) == "Acme: 1,234.5 x3, (none), (none)"


def test_no_attribute_or_format_tricks() -> None:
    variables = {"deal": {"name": "Acme"}}
    assert render("{deal.name.__class__} {deal.name!r} {deal.name:>10}", variables) == (
        "(none) {deal.name!r} {deal.name:>10}"
    )
    assert placeholders("{a.b} {c} {d!r}") == ["a.b", "c"]
