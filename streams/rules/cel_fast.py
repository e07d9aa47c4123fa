"""The common subset of CEL compiled to Python closures, for the hot path.

Rules are written in CEL and checked by the ``cel`` library (:mod:`streams.rules.cel_expr`),
which stays the reference. Converting a record into the library's context costs more than
evaluating it, so expressions made only of the constructs below are also compiled here
into plain closures over the activation dict, with the same results, errors included
(checked against the library by a differential test):

* literals (int, double, string, bool, null), lists, identifiers, ``a.b``, ``a[i]``;
* ``! - * / % + < <= > >= == != in && || ?:``, parentheses;
* ``has(a.b)``, ``type(x)`` against ``bool int double string null_type list map``,
  ``size(x)``/``x.size()``, ``x.startsWith(s)``, ``x.endsWith(s)``, ``x.contains(s)``.

Anything else raises :class:`Unsupported` and the expression runs on the library.

Semantics kept from CEL: a missing key raises ``KeyError`` (the rule does not hold); a
type mismatch raises ``TypeError`` (a rule error); ``&&`` and ``||`` absorb an error when
the other side decides (``false && error`` is false, ``error || true`` is true).

The compiler also reports which record fields an expression reads, so the rule set can
index a rule by them: a rule that reads only ``deal.stage`` is not judged again when only
``deal.amount`` changes.

The parser is :mod:`streams.rules.cel_parse`, the value semantics (types, operators,
selection) :mod:`streams.rules.cel_values`; this module compiles the tree to closures.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.rules.cel_parse import Node, Unsupported, parse
from streams.rules.cel_values import (
    BINARY,
    METHODS,
    TYPES,
    Activation,
    as_bool,
    has,
    is_num,
    negate,
    select,
    size,
    subscript,
    type_of,
    variable,
)

Fn = Callable[[Activation], Any]

__all__ = ["FastCel", "Unsupported", "compile_fast"]


@dataclass(frozen=True, slots=True)
class FastCel:
    """A compiled expression: ``fn(activation)`` and the paths it reads."""

    fn: Fn
    #: ``(variable, field)`` pairs read through ``variable.field``; ``(variable, "*")`` when
    #: a variable is read as a whole.
    reads: frozenset[tuple[str, str]]
    #: ``event.op == "create"`` is one of the top-level ``&&`` terms: never holds after.
    create_only: bool = False


def compile_fast(source: str) -> FastCel:
    """Compile ``source``; raises :class:`Unsupported` beyond the subset."""
    tree = parse(source)
    reads: set[tuple[str, str]] = set()
    return FastCel(fn=_compile(tree, reads), reads=frozenset(reads), create_only=_on_create(tree))


_OP = ("sel", ("id", "event"), "op")
_CREATE = ("lit", "create")


def _on_create(node: Node) -> bool:
    if node[0] == "and":
        return _on_create(node[1]) or _on_create(node[2])
    return (
        node[0] == "bin"
        and node[1] == "=="
        and (node[2], node[3]) in ((_OP, _CREATE), (_CREATE, _OP))
    )


def _compile(node: Node, reads: set[tuple[str, str]]) -> Fn:
    tag = node[0]
    if tag == "lit":
        value = node[1]
        return lambda act: value
    if tag == "list":
        if all(n[0] == "lit" for n in node[1]):
            constant = [n[1] for n in node[1]]
            return lambda act: list(constant)
        items = [_compile(n, reads) for n in node[1]]
        return lambda act: [f(act) for f in items]
    if tag == "id":
        name = node[1]
        if name in TYPES:
            tvalue = TYPES[name]
            return lambda act: act.get(name, tvalue)
        reads.add((name, "*"))
        return lambda act: variable(act, name)
    if tag == "sel":
        target, name = node[1], node[2]
        if target[0] == "id" and target[1] not in TYPES:
            var = target[1]
            reads.add((var, name))

            def select_var(act: Activation) -> Any:
                holder = act[var] if var in act else variable(act, var)
                if holder.__class__ is dict:
                    return holder[name]
                return select(holder, name)

            return select_var
        inner = _compile(target, reads)
        return lambda act: select(inner(act), name)
    if tag == "idx":
        target_fn, index_fn = _compile(node[1], reads), _compile(node[2], reads)
        return lambda act: subscript(target_fn(act), index_fn(act))
    if tag == "un":
        operand = _compile(node[2], reads)
        if node[1] == "!":
            return lambda act: not as_bool(operand(act))
        return lambda act: negate(operand(act))
    if tag == "bin":
        special = _specialised(node, reads)
        if special is not None:
            return special
        op, left, right = node[1], _compile(node[2], reads), _compile(node[3], reads)
        fn = BINARY[op]
        return lambda act: fn(left(act), right(act))
    if tag == "and":
        return _and(_compile(node[1], reads), _compile(node[2], reads))
    if tag == "or":
        return _or(_compile(node[1], reads), _compile(node[2], reads))
    if tag == "cond":
        cond, then, other = (_compile(n, reads) for n in node[1:])
        return lambda act: then(act) if as_bool(cond(act)) else other(act)
    if tag == "call":
        return _call(node, reads)
    raise Unsupported(f"node {tag}")  # pragma: no cover - the parser makes no other


#: ``type(x) == <name>`` without building a type value (the activation never names a
#: variable after a type: CEL reserves them).
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "double": lambda v: v.__class__ is float,
    "int": lambda v: v.__class__ is int,
    "string": lambda v: v.__class__ is str,
    "bool": lambda v: v.__class__ is bool,
    "null_type": lambda v: v is None,
    "list": lambda v: isinstance(v, list | tuple),
    "map": lambda v: isinstance(v, Mapping),
}
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def _specialised(node: Node, reads: set[tuple[str, str]]) -> Fn | None:
    """Faster closures for the most common shapes, with the same results:
    ``x == "lit"``/``x != "lit"``, ``x == null``, ``x in ["a", "b"]`` (string literals)."""
    op, left_node, right_node = node[1], node[2], node[3]
    if op in ("==", "!=") and left_node[0] == "lit" and right_node[0] != "lit":
        left_node, right_node = right_node, left_node
    if op in ("==", "!=") and right_node[0] == "lit":
        lit = right_node[1]
        if isinstance(lit, str):  # only a string equals a string
            left = _compile(left_node, reads)
            if op == "==":
                return lambda act: left(act) == lit
            return lambda act: left(act) != lit
        if lit is None:
            left = _compile(left_node, reads)
            if op == "==":
                return lambda act: left(act) is None
            return lambda act: left(act) is not None
    if op in ("==", "!=") and right_node[0] == "id" and right_node[1] in _TYPE_CHECKS:
        call = left_node
        if call[0] == "call" and call[1] == "type" and call[2] is None and len(call[3]) == 1:
            arg, check = _compile(call[3][0], reads), _TYPE_CHECKS[right_node[1]]
            if op == "==":
                return lambda act: check(arg(act))
            return lambda act: not check(arg(act))
    if op in _ORDER and right_node[0] == "lit" and is_num(right_node[1]):
        left, bound, compare = _compile(left_node, reads), right_node[1], _ORDER[op]
        slow = BINARY[op]

        def ordered(act: Activation) -> bool:
            value = left(act)
            if value.__class__ is float and value == value:  # a double, not NaN
                return compare(value, bound)
            return bool(slow(value, bound))

        return ordered
    if (
        op == "in"
        and right_node[0] == "list"
        and right_node[1]
        and all(n[0] == "lit" and isinstance(n[1], str) for n in right_node[1])
    ):
        members = frozenset(n[1] for n in right_node[1])
        left = _compile(left_node, reads)

        def member(act: Activation) -> bool:
            value = left(act)
            return value.__class__ is str and value in members

        return member
    return None


def _call(node: Node, reads: set[tuple[str, str]]) -> Fn:
    name, target, args = node[1], node[2], node[3]
    if target is None and name == "has":
        if len(args) != 1 or args[0][0] != "sel":
            raise Unsupported("has() takes one field selection")
        _, holder_node, field = args[0]
        if holder_node[0] == "id":
            reads.add((holder_node[1], field))
            holder_reads: set[tuple[str, str]] = set()
            holder = _compile(holder_node, holder_reads)
        else:
            holder = _compile(holder_node, reads)
        return lambda act: has(holder(act), field)
    if target is None and name in ("type", "size") and len(args) == 1:
        arg = _compile(args[0], reads)
        if name == "type":
            return lambda act: type_of(arg(act))
        return lambda act: size(arg(act))
    if target is not None and name == "size" and not args:
        inner = _compile(target, reads)
        return lambda act: size(inner(act))
    if target is not None and name in METHODS and len(args) == 1:
        method = METHODS[name]
        inner, arg = _compile(target, reads), _compile(args[0], reads)
        return lambda act: method(inner(act), arg(act))
    raise Unsupported(f"function {name}()")


def _decides(side: Fn, act: Activation, value: bool) -> bool:
    """``True`` when ``side`` yields ``value``; an error there is raised instead of the
    other side's (as the reference library does)."""
    return side(act) is value


def _and(left: Fn, right: Fn) -> Fn:
    def fn(act: Activation) -> bool:
        try:
            a = as_bool(left(act))
        except Exception as error:
            if _decides(right, act, False):
                return False
            raise error from None
        if not a:
            return False
        return as_bool(right(act))

    return fn


def _or(left: Fn, right: Fn) -> Fn:
    def fn(act: Activation) -> bool:
        try:
            a = as_bool(left(act))
        except Exception as error:
            if _decides(right, act, True):
                return True
            raise error from None
        if a:
            return True
        return as_bool(right(act))

    return fn
