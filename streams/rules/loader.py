"""Reading rule files: YAML in, validated and compiled rules out, or every error with its
file, line and field.

A file holds one rule, a list of rules, a mapping with a ``rules:`` list, or several YAML
documents separated by ``---``. Validation runs the pydantic union and then compiles each
rule (CEL, templates), so ``rules validate`` and the worker accept exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from streams.rules.exceptions import RuleCompileError
from streams.rules.model import Rule, parse_rule
from streams.rules.ruleset import CompiledRule, compile_rule
from streams.yamlpos import node_line


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One error of one rule, located for humans."""

    source: str
    line: int | None
    rule_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        rule = f" rule {self.rule_id!r}" if self.rule_id else ""
        return f"{where}:{rule} field '{self.field}': {self.message}"


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    compiled: CompiledRule
    source: str
    line: int | None


@dataclass(frozen=True, slots=True)
class LoadResult:
    rules: list[LoadedRule]
    problems: list[RuleProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def _rule_nodes(root: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(root, yaml.SequenceNode):
        yield from root.value
    elif isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if key_node.value == "rules" and isinstance(value_node, yaml.SequenceNode):
                yield from value_node.value
                return
        yield root
    else:
        yield root


def _field_of(loc: tuple[int | str, ...], data: Any) -> tuple[str, tuple[int | str, ...]]:
    """Drop the discriminator tag pydantic puts first in union error locations."""
    if loc and isinstance(data, dict) and loc[0] == data.get("type"):
        loc = loc[1:]
    return (".".join(str(p) for p in loc) or "(rule)"), loc


def validate_node(node: yaml.Node, source: str) -> LoadedRule | list[RuleProblem]:
    """Validate and compile the rule held by one YAML node."""
    data = yaml.safe_load(yaml.serialize(node))
    rule_id = data.get("id") if isinstance(data, dict) else None
    rule_id = rule_id if isinstance(rule_id, str) else None
    try:
        rule = parse_rule(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name, loc = _field_of(tuple(error["loc"]), data)
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                name, loc = "type", ("type",)
            problems.append(RuleProblem(source, node_line(node, loc), rule_id, name, error["msg"]))
        return problems
    try:
        compiled = compile_rule(rule)
    except RuleCompileError as exc:
        return [RuleProblem(source, node_line(node, (exc.field,)), rule.id, exc.field, exc.detail)]
    return LoadedRule(rule, compiled, source, node.start_mark.line + 1)


def load_text(text: str, source: str = "<text>") -> LoadResult:
    """Load every rule of a YAML text."""
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    try:
        roots = list(yaml.compose_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return LoadResult([], [RuleProblem(source, line, None, "(yaml)", str(problem))])
    for root in roots:
        if root is None:
            continue
        for node in _rule_nodes(root):
            found = validate_node(node, source)
            if isinstance(found, LoadedRule):
                rules.append(found)
            else:
                problems.extend(found)
    seen: dict[str, LoadedRule] = {}
    for loaded in rules:
        first = seen.setdefault(loaded.rule.id, loaded)
        if first is not loaded:
            problems.append(
                RuleProblem(
                    source, loaded.line, loaded.rule.id, "id",
                    f"duplicate rule id (first defined in {first.source}:{first.line})",
                )
            )  # fmt: skip
    return LoadResult(rules, problems)


def load_paths(paths: Iterable[Path]) -> LoadResult:
    """Load rule files and folders (``*.yaml``/``*.yml``, sorted); ids must be unique."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    seen: dict[str, LoadedRule] = {}
    for file in files:
        try:
            text = file.read_text()
        except OSError as exc:
            problems.append(RuleProblem(str(file), None, None, "(file)", str(exc)))
            continue
        result = load_text(text, str(file))
        problems.extend(result.problems)
        for loaded in result.rules:
            first = seen.setdefault(loaded.rule.id, loaded)
            if first is not loaded:
                problems.append(
                    RuleProblem(
                        loaded.source, loaded.line, loaded.rule.id, "id",
                        f"duplicate rule id (first defined in {first.source}:{first.line})",
                    )
                )  # fmt: skip
            else:
                rules.append(loaded)
    return LoadResult(rules, problems)
