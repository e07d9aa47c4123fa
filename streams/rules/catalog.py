"""The live rule catalog: what the compacted ``crm.rules`` topic says, validated (pure).

Every record of the topic is ``key = rule id``, ``value = rule JSON`` or ``None``
(tombstone: the rule is deleted). :class:`RuleCatalog` folds records into the set of valid
rules. A record that does not validate or compile is *rejected*: the previous valid
version of that rule stays live, so a bad record can never break alerting.

The same functions serve ``crm-pulse rules apply|diff|list`` and the HTTP API, so the
CLI, the API and every worker agree on what "changed" means: two rules are the same when
their canonical JSON is equal, ``version`` left aside (``apply`` bumps it when needed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from streams.rules.exceptions import RuleCompileError
from streams.rules.model import Rule, parse_rule
from streams.rules.ruleset import CompiledRule, RuleSet, compile_rule

Outcome = Literal["added", "changed", "unchanged", "deleted", "rejected", "ignored"]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One validation error of one rule, by field (for 422 answers and logs)."""

    field: str
    message: str


def rule_document(rule: Rule) -> dict[str, Any]:
    """The canonical JSON-able form of a rule (every field, defaults included)."""
    doc: dict[str, Any] = rule.model_dump(mode="json")
    return doc


def encode_rule(rule: Rule) -> bytes:
    """The topic value of a rule (canonical, sorted keys)."""
    return orjson.dumps(rule_document(rule), option=orjson.OPT_SORT_KEYS)


def content_key(rule: Rule) -> bytes:
    """What "the same rule" means: canonical JSON without ``version``."""
    doc = rule_document(rule)
    doc.pop("version", None)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def same_content(a: Rule, b: Rule) -> bool:
    return content_key(a) == content_key(b)


def problems_of(exc: ValidationError, data: Any) -> list[FieldProblem]:
    """Field-level problems of a pydantic error on a rule (discriminator tag dropped)."""
    found = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and isinstance(data, dict) and loc[0] == data.get("type"):
            loc = loc[1:]
        name = ".".join(str(p) for p in loc) or "(rule)"
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            name = "type"
        found.append(FieldProblem(name, error["msg"]))
    return found


def check_rule(data: Any) -> tuple[Rule, CompiledRule] | list[FieldProblem]:
    """Validate and compile one rule given as plain data."""
    try:
        rule = parse_rule(data)
    except ValidationError as exc:
        return problems_of(exc, data)
    try:
        compiled = compile_rule(rule)
    except RuleCompileError as exc:
        return [FieldProblem(exc.field, exc.detail)]
    return rule, compiled


def decode_record(
    key: bytes | None, value: bytes
) -> tuple[Rule, CompiledRule] | list[FieldProblem]:
    """Validate one topic record (its key must be the rule id)."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return [FieldProblem("(json)", str(exc))]
    checked = check_rule(data)
    if isinstance(checked, list):
        return checked
    rule_id = key.decode(errors="replace") if key is not None else None
    if rule_id != checked[0].id:
        detail = f"record key {rule_id!r} differs from rule id {checked[0].id!r}"
        return [FieldProblem("id", detail)]
    return checked


@dataclass(frozen=True, slots=True)
class Applied:
    """What one topic record did to the catalog."""

    rule_id: str
    outcome: Outcome
    problems: tuple[FieldProblem, ...] = ()
    type_changed: bool = False


@dataclass
class RuleCatalog:
    """The valid live rules, folded from topic records (last valid record of an id wins)."""

    rules: dict[str, CompiledRule] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> Applied:
        rule_id = key.decode(errors="replace") if key is not None else ""
        if not rule_id:
            return Applied("", "rejected", (FieldProblem("(key)", "record without a key"),))
        if value is None:
            if self.rules.pop(rule_id, None) is None:
                return Applied(rule_id, "ignored")
            return Applied(rule_id, "deleted")
        checked = decode_record(key, value)
        if isinstance(checked, list):
            return Applied(rule_id, "rejected", tuple(checked))
        rule, compiled = checked
        previous = self.rules.get(rule_id)
        if previous is not None and encode_rule(previous.rule) == encode_rule(rule):
            return Applied(rule_id, "unchanged")
        self.rules[rule_id] = compiled
        if previous is None:
            return Applied(rule_id, "added")
        return Applied(rule_id, "changed", type_changed=previous.rule.type != rule.type)

    def apply_all(self, records: Iterable[tuple[bytes | None, bytes | None]]) -> list[Applied]:
        return [self.apply(key, value) for key, value in records]

    def ruleset(self) -> RuleSet:
        return RuleSet.build(self.rules.values())


# --- planning an apply: files against the live catalog ---------------------------------


@dataclass(frozen=True, slots=True)
class PlanItem:
    rule_id: str
    action: Literal["added", "changed", "unchanged", "deleted", "live-only"]
    rule: Rule | None  # the rule to publish (version bumped if needed); None for deletes
    live: Rule | None


def plan_apply(
    wanted: Iterable[Rule], live: Mapping[str, Rule], *, prune: bool = False
) -> list[PlanItem]:
    """What ``apply`` publishes: new and changed rules; with ``prune``, tombstones for live
    rules absent from the files. A changed rule whose version is not above the live one is
    published with ``live.version + 1`` so every change gets a version of its own."""
    items: list[PlanItem] = []
    seen: set[str] = set()
    for rule in sorted(wanted, key=lambda r: r.id):
        seen.add(rule.id)
        current = live.get(rule.id)
        if current is None:
            items.append(PlanItem(rule.id, "added", rule, None))
        elif same_content(rule, current):
            items.append(PlanItem(rule.id, "unchanged", None, current))
        else:
            if rule.version <= current.version:
                rule = rule.model_copy(update={"version": current.version + 1})
            items.append(PlanItem(rule.id, "changed", rule, current))
    for rule_id in sorted(set(live) - seen):
        action: Literal["deleted", "live-only"] = "deleted" if prune else "live-only"
        items.append(PlanItem(rule_id, action, None, live[rule_id]))
    return items


def to_publish(items: Iterable[PlanItem]) -> list[tuple[bytes, bytes | None]]:
    """Topic records of a plan: values of added/changed rules and tombstones of deletes."""
    out: list[tuple[bytes, bytes | None]] = []
    for item in items:
        if item.action in ("added", "changed") and item.rule is not None:
            out.append((item.rule_id.encode(), encode_rule(item.rule)))
        elif item.action == "deleted":
            out.append((item.rule_id.encode(), None))
    return out
