"""Warnings of ``rules validate`` on valid rules that would raise at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main
from streams.rules.lint import int_arithmetic


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("deal.amount * 10 > 3.0", ["10"]),
        ("2 * deal.amount > 1.0", ["2"]),
        ("deal.amount - 3 > 1.0", ["3"]),
        ("deal.amount * 10.0 > 1000", []),  # comparison with an int is fine
        ("deal.amount > -5", []),
        ('deal.name == "x * 3"', []),
        ("deal.x1 * 2.5 > 1.0", []),
    ],
)
def test_int_literals_in_arithmetic(source: str, found: list[str]) -> None:
    assert int_arithmetic(source) == found


def test_validate_prints_errors_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: warn-me\n    type: condition\n    condition: 'deal.amount * 10 > 5.0'\n"
        "    message: m\n"
        "  - id: broken\n    type: transition\n    field: amount\n    change: increased\n"
        "    message: m\n"
    )
    assert main(["rules", "validate", str(rules)]) == 1
    out = capsys.readouterr()
    assert f"{rules}:9: rule 'broken' field 'change': Value error, change=increased needs" in (
        out.err
    )
    assert f"warning: {rules}:2: rule 'warn-me' field 'condition': integer literal 10" in out.err
    assert "1 valid rule(s), 1 error(s), 1 warning(s)" in out.out
    assert main(["rules", "validate"]) == 0  # the starter pack: no error, no warning
    assert "23 valid rule(s), 0 error(s), 0 warning(s)" in capsys.readouterr().out
