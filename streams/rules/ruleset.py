"""The compiled rule set: compiled once per rule version, indexed by entity and changed field,
swapped atomically by the worker when ``crm.rules`` changes."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.contracts.events import EntityKind
from streams.rules.cel_expr import CelExpression, compile_cel
from streams.rules.change import Change, Outcome
from streams.rules.exceptions import RuleCompileError
from streams.rules.model import Rule
from streams.rules.registry import REGISTRY, RuleType
from streams.rules.template import placeholders

_TEMPLATE_ROOTS = frozenset(
    {"rule", "record", "old", "evidence", "event", "subject", "kpi", "owner"}
) | {kind.value for kind in EntityKind}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    spec: RuleType
    guard: CelExpression | None
    resolve: CelExpression | None
    watched: frozenset[str] | None
    id: str = ""
    #: ``possible(change)`` is ``False`` when the rule can neither hold nor change its state
    #: on ``change`` (a cheap pre-check the engine runs when no episode is open).
    possible: Callable[[Change], bool] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", self.rule.id)
        bind = self.spec.possible
        if bind is not None:  # bound once: the engine calls it on most (rule, change) pairs
            object.__setattr__(self, "possible", bind(self.rule, self.guard))

    @property
    def create_only(self) -> bool:
        """A point rule whose condition requires ``event.op == "create"``: only a record's
        creation can make it fire (it never resolves, being a point rule)."""
        point = self.spec.name == "condition" and getattr(self.rule, "each_time", False)
        fast = self.guard.fast if self.guard is not None else None
        return point and fast is not None and fast.create_only

    def evaluate(self, change: Change, state: Mapping[str, Any]) -> Outcome:
        return self.spec.evaluate(self.rule, change, state, self.guard)


def _compile_expr(rule: Rule, field_name: str, source: str | None) -> CelExpression | None:
    if source is None:
        return None
    try:
        return compile_cel(source)
    except ValueError as exc:
        raise RuleCompileError(rule.id, field_name, f"invalid CEL: {exc}") from exc


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile CEL and check templates; raises :class:`RuleCompileError` naming the field."""
    spec = REGISTRY.get(rule.type)
    if spec is None:  # the model union and the registry are kept in step by a unit test
        raise RuleCompileError(rule.id, "type", f"unknown rule type {rule.type!r}")
    for name in ("message", "title", "resolved_message"):
        template = getattr(rule, name)
        for path in placeholders(template or ""):
            if path.split(".")[0] not in _TEMPLATE_ROOTS:
                raise RuleCompileError(
                    rule.id,
                    name,
                    f"unknown placeholder {{{path}}}; use one of {sorted(_TEMPLATE_ROOTS)}",
                )
    guard = _compile_expr(rule, "condition", rule.condition)
    resolve = _compile_expr(rule, "resolve_when", rule.resolve_when)
    entity = rule.applies_to.entity.value
    return CompiledRule(
        rule=rule,
        spec=spec,
        guard=guard,
        resolve=resolve,
        watched=spec.watched_fields(rule, record_reads(entity, guard, resolve)),
    )


def record_reads(entity: str, *exprs: CelExpression | None) -> frozenset[str] | None:
    """The record fields the expressions read (``<entity>.f`` or ``record.f``), or ``None``
    when they read anything else (``old``, ``event``, ``changed``, a whole record) or are
    beyond the compiled subset: then only "any change" is safe."""
    fields: set[str] = set()
    for expr in exprs:
        if expr is None:
            continue
        reads = expr.reads
        if reads is None:
            return None
        for var, name in reads:
            if var not in (entity, "record") or name == "*":
                return None
            fields.add(name)
    return frozenset(fields)


#: Distinct (entity, changed names) whose candidates a rule set keeps.
_SEEN_MAX = 4096


@dataclass(frozen=True)
class RuleSet:
    """An immutable, indexed set of enabled compiled rules."""

    rules: tuple[CompiledRule, ...] = ()
    version: str = "empty"
    _any: Mapping[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _by_field: Mapping[tuple[str, str], tuple[CompiledRule, ...]] = field(
        default_factory=dict, repr=False
    )
    _all: Mapping[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _order: Mapping[str, int] = field(default_factory=dict, repr=False)
    _by_kpi: Mapping[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    #: Every CEL variable the enabled rules refer to (the engine converts only these).
    variables: frozenset[str] = frozenset()
    #: (entity, changed names in their order) -> candidates, computed once (bounded).
    _seen: dict[tuple[str, tuple[str, ...]], Sequence[CompiledRule]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(cls, compiled: Iterable[CompiledRule]) -> RuleSet:
        ordered = tuple(sorted(compiled, key=lambda c: c.id))
        any_field: dict[str, list[CompiledRule]] = defaultdict(list)
        by_field: dict[tuple[str, str], list[CompiledRule]] = defaultdict(list)
        every: dict[str, list[CompiledRule]] = defaultdict(list)
        by_kpi: dict[str, list[CompiledRule]] = defaultdict(list)
        for c in ordered:
            if c.rule.enabled and c.spec.kind == "kpi":
                by_kpi[str(getattr(c.rule, "kpi", ""))].append(c)
            if not c.rule.enabled or c.spec.kind == "kpi":
                continue
            entity = c.rule.applies_to.entity.value
            every[entity].append(c)
            if c.create_only:
                continue  # met through ``candidates(create=True)`` only
            if c.watched is None:
                any_field[entity].append(c)
            else:
                for name in c.watched:
                    by_field[(entity, name)].append(c)
        digest = hashlib.sha1(  # content, not only versions: an edit always changes it
            "\n".join(
                f"{c.id}@{c.rule.version}:{c.rule.model_dump_json()}" for c in ordered
            ).encode()
        ).hexdigest()[:12]
        return cls(
            rules=ordered,
            version=digest if ordered else "empty",
            _any={k: tuple(v) for k, v in any_field.items()},
            _by_field={k: tuple(v) for k, v in by_field.items()},
            _all={k: tuple(v) for k, v in every.items()},
            _order={c.id: i for i, c in enumerate(ordered)},
            _by_kpi={k: tuple(v) for k, v in by_kpi.items()},
            variables=frozenset(
                name
                for c in ordered
                if c.rule.enabled
                for expr in (c.guard, c.resolve)
                if expr is not None
                for name in expr.variables
            ),
        )

    def get(self, rule_id: str) -> CompiledRule | None:
        index = self._order.get(rule_id)
        return None if index is None else self.rules[index]

    def candidates(
        self, entity: str, changed: Iterable[str], *, create: bool = False
    ) -> Sequence[CompiledRule]:
        """Rules of ``entity`` that a change of ``changed`` fields can make fire or resolve.

        A creation meets every rule of its entity: each field goes from absent to its
        value, or stays absent, which a rule may be about (a required field missing)."""
        if create:
            return self._all.get(entity, ())
        names = tuple(changed)  # the same names recur: one lookup instead of the walk
        known = self._seen.get((entity, names))
        if known is not None:
            return known
        found = list(self._any.get(entity, ()))
        by_field = self._by_field
        if by_field:
            seen = {c.id for c in found}
            for name in names:
                for c in by_field.get((entity, name), ()):
                    if c.id not in seen:
                        seen.add(c.id)
                        found.append(c)
        result = tuple(found)
        if len(self._seen) < _SEEN_MAX:
            self._seen[(entity, names)] = result
        return result

    def timer_rules(self, entity: str) -> Sequence[CompiledRule]:
        """Enabled timer-driven rules of ``entity`` (re-judged when a deadline comes)."""
        return [c for c in self._any.get(entity, ()) if c.spec.kind == "timer"]

    def kpi_rules(self, kpi: str) -> Sequence[CompiledRule]:
        """Enabled KPI rules watching ``kpi`` (indexed: asked once per KPI snapshot read)."""
        return self._by_kpi.get(kpi, ())

    @property
    def has_kpi_rules(self) -> bool:
        """Whether any enabled rule watches a KPI (else snapshots need no reading at all)."""
        return bool(self._by_kpi)

    def __len__(self) -> int:
        return len(self.rules)
