"""Loading rule files: every error with its file, line and field."""

from __future__ import annotations

from pathlib import Path

from streams.rules.loader import load_paths, load_text

REPO = Path(__file__).resolve().parents[2]

TWO_BAD = """\
rules:
  - id: ok-rule
    type: condition
    condition: 'deal.amount > 1.0'
    message: fine
  - id: bad-severity
    type: condition
    severity: urgent
    condition: 'deal.amount > 1.0'
    message: x
  - id: bad-cel
    type: condition
    condition: 'deal.amount >'
    message: x
  - id: bad-type
    type: sometimes
    message: x
"""


def test_every_problem_has_file_line_and_field() -> None:
    result = load_text(TWO_BAD, "rules/x.yaml")
    got = {(p.rule_id, p.line, p.field) for p in result.problems}
    assert got == {("bad-severity", 8, "severity"), ("bad-cel", 13, "condition"),
                   ("bad-type", 16, "type")}  # fmt: skip
    assert [r.rule.id for r in result.rules] == ["ok-rule"]
    text = str(next(p for p in result.problems if p.field == "severity"))
    assert text.startswith("rules/x.yaml:8: rule 'bad-severity' field 'severity':")


def test_unknown_template_placeholder_is_refused() -> None:
    result = load_text("id: r1\ntype: condition\ncondition: 'true'\nmessage: '{secret.x}'\n")
    assert [(p.field, p.line) for p in result.problems] == [("message", 4)]


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    rule = "id: same\ntype: condition\ncondition: 'true'\nmessage: m\n"
    (tmp_path / "a.yaml").write_text(rule)
    (tmp_path / "b.yaml").write_text(rule)
    result = load_paths([tmp_path])
    assert [(p.field, p.source.endswith("b.yaml")) for p in result.problems] == [("id", True)]


def test_yaml_syntax_error_has_a_line() -> None:
    result = load_text("rules:\n  - id: x\n    type: [unclosed\n", "f.yaml")
    assert result.problems[0].field == "(yaml)" and result.problems[0].line == 4


def test_starter_pack_is_valid_and_large_enough() -> None:
    result = load_paths([REPO / "rules"])
    assert result.ok, [str(p) for p in result.problems]
    assert len(result.rules) >= 20
    assert {r.rule.type for r in result.rules} == {
        "condition", "transition", "required_fields", "frequency"}  # fmt: skip
