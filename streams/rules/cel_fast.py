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
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Activation = Mapping[str, Any]
Fn = Callable[[Activation], Any]


class Unsupported(Exception):
    """The expression uses CEL beyond the compiled subset (the library evaluates it)."""


class _Type:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TYPE_NAMES = ("bool", "int", "double", "string", "null_type", "list", "map", "type")
TYPES = {name: _Type(name) for name in _TYPE_NAMES}


def type_of(value: Any) -> _Type:
    if isinstance(value, bool):
        return TYPES["bool"]
    if isinstance(value, int):
        return TYPES["int"]
    if isinstance(value, float):
        return TYPES["double"]
    if isinstance(value, str):
        return TYPES["string"]
    if value is None:
        return TYPES["null_type"]
    if isinstance(value, list | tuple):
        return TYPES["list"]
    if isinstance(value, Mapping):
        return TYPES["map"]
    if isinstance(value, _Type):
        return TYPES["type"]
    raise TypeError(f"no CEL type for {type(value).__name__}")


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+)
    |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    source = source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise Unsupported(f"unexpected text at {pos}: {source[pos : pos + 10]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    out.append(("end", ""))
    return out


def _string(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise Unsupported(f"escape \\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------- syntax tree

Node = tuple[Any, ...]  # ("lit", v) ("id", name) ("sel", node, field) ("idx", a, b)
# ("call", fname, target | None, [args]) ("list", [items]) ("un", op, node)
# ("bin", op, a, b) ("and", a, b) ("or", a, b) ("cond", c, a, b)

_RELATIONS = ("<", "<=", ">", ">=", "==", "!=", "in")
_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue",
                       "else", "for", "function", "if", "import", "let", "loop", "package",
                       "namespace", "return", "var", "void", "while"})  # fmt: skip


def _balance(tag: str, terms: list[Node], lo: int, hi: int) -> Node:
    """A chain of ``&&`` (or ``||``) as a balanced tree, as CEL parsers build it: which
    error surfaces when several terms fail depends on that shape."""
    if lo == hi:
        return terms[lo]
    mid = (lo + hi) // 2
    return (tag, _balance(tag, terms, lo, mid), _balance(tag, terms, mid + 1, hi))


class _Parser:
    def __init__(self, source: str) -> None:
        self.toks = _tokens(source)
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise Unsupported(f"expected {value!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        kind, text = self.toks[self.i]
        return kind in ("op", "id") and text in values

    def parse(self) -> Node:
        node = self.expr()
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self) -> Node:
        cond = self.or_()
        if self.at("?"):
            self.take()
            then = self.or_()
            self.take(":")
            return ("cond", cond, then, self.expr())
        return cond

    def or_(self) -> Node:
        terms = [self.and_()]
        while self.at("||"):
            self.take()
            terms.append(self.and_())
        return _balance("or", terms, 0, len(terms) - 1)

    def and_(self) -> Node:
        terms = [self.rel()]
        while self.at("&&"):
            self.take()
            terms.append(self.rel())
        return _balance("and", terms, 0, len(terms) - 1)

    def rel(self) -> Node:
        node = self.add()
        while self.at(*_RELATIONS):
            op = self.take()[1]
            node = ("bin", op, node, self.add())
        return node

    def add(self) -> Node:
        node = self.mul()
        while self.at("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.mul())
        return node

    def mul(self) -> Node:
        node = self.unary()
        while self.at("*", "/", "%"):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at("!", "-"):
            op = self.take()[1]
            count = 1
            while self.at(op):  # like CEL's parser: an even run of ! or - cancels out
                self.take()
                count += 1
            if count % 2 == 0:
                return self.unary()
            if op == "-" and self.peek()[0] == "num":  # a negative literal
                return self.member(self.number(negative=True))
            return ("un", op, self.unary())
        return self.member(self.primary())

    def number(self, negative: bool = False) -> Node:
        text = self.take()[1]
        sign = -1 if negative else 1
        if any(c in text for c in ".eE"):
            return ("lit", sign * float(text))
        return ("lit", sign * int(text))

    def args(self, close: str) -> list[Node]:
        items: list[Node] = []
        if not self.at(close):
            items.append(self.expr())
            while self.at(","):
                self.take()
                if self.at(close):
                    break
                items.append(self.expr())
        self.take(close)
        return items

    def member(self, node: Node) -> Node:
        while True:
            if self.at("."):
                self.take()
                kind, name = self.take()
                if kind != "id":
                    raise Unsupported(f"field name expected, found {name!r}")
                if self.at("("):
                    self.take()
                    node = ("call", name, node, self.args(")"))
                else:
                    node = ("sel", node, name)
            elif self.at("["):
                self.take()
                index = self.expr()
                self.take("]")
                node = ("idx", node, index)
            else:
                return node

    def primary(self) -> Node:
        kind, text = self.peek()
        if kind == "num":
            return self.number()
        if kind == "str":
            self.take()
            return ("lit", _string(text))
        if kind == "id":
            self.take()
            if text == "true":
                return ("lit", True)
            if text == "false":
                return ("lit", False)
            if text == "null":
                return ("lit", None)
            if text in _RESERVED:
                raise Unsupported(f"reserved word {text!r}")
            if self.at("("):
                self.take()
                return ("call", text, None, self.args(")"))
            return ("id", text)
        if text == "(":
            self.take()
            node = self.expr()
            self.take(")")
            return node
        if text == "[":
            self.take()
            return ("list", self.args("]"))
        raise Unsupported(f"unsupported syntax at {text!r}")


# ---------------------------------------------------------------- value semantics


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_SIMPLE = frozenset({str, float, bool, type(None)})


def cel_eq(a: Any, b: Any) -> bool:
    kind = a.__class__
    if kind is b.__class__ and kind in _SIMPLE:
        return bool(a == b)
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(cel_eq(a[k], b[k]) for k in a)
    if type_of(a) is not type_of(b):
        return False
    return bool(a == b)


def _ordered(a: Any, b: Any) -> None:
    if _is_num(a) and _is_num(b):
        if a != a or b != b:  # NaN has no order
            raise TypeError("no such overload: NaN is not ordered")
        return
    if type(a) is type(b) and isinstance(a, str | bool):
        return
    raise TypeError(f"no such overload: {type_of(a)} and {type_of(b)} are not ordered")


def _same_arith(a: Any, b: Any, op: str) -> None:
    if isinstance(a, bool) or isinstance(b, bool) or type(a) is not type(b):
        raise TypeError(f"no such overload: {type_of(a)} {op} {type_of(b)}")


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, list) and isinstance(b, Mapping):  # the reference library adds the keys
        return a + list(b)
    _same_arith(a, b, "+")
    if isinstance(a, int | float | str):
        return a + b
    if isinstance(a, list):
        return a + b
    raise TypeError(f"no such overload: {type_of(a)} + {type_of(b)}")


def _numeric(a: Any, b: Any, op: str) -> None:
    _same_arith(a, b, op)
    if not isinstance(a, int | float):
        raise TypeError(f"no such overload: {type_of(a)} {op} {type_of(b)}")


def _sub(a: Any, b: Any) -> Any:
    _numeric(a, b, "-")
    return a - b


def _mul(a: Any, b: Any) -> Any:
    _numeric(a, b, "*")
    return a * b


def _div(a: Any, b: Any) -> Any:
    _numeric(a, b, "/")
    if isinstance(a, int):
        if b == 0:
            raise ZeroDivisionError("division by zero")
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mod(a: Any, b: Any) -> Any:
    _numeric(a, b, "%")
    if not isinstance(a, int):
        raise TypeError("no such overload: double % double")
    if b == 0:
        raise ZeroDivisionError("modulus by zero")
    return int(math.fmod(a, b))


def _lt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    _ordered(a, b)
    return bool(a >= b)


def _ne(a: Any, b: Any) -> bool:
    return not cel_eq(a, b)


def _in(a: Any, b: Any) -> bool:
    if isinstance(b, list | tuple):
        return any(cel_eq(a, x) for x in b)
    if isinstance(b, Mapping):
        if not isinstance(a, str | int):  # bool is an int too; double, null, list: no
            raise TypeError(f"{type_of(a)} cannot be a map key")
        return a in b
    raise TypeError(f"no such overload: {type_of(a)} in {type_of(b)}")


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod,
    "<": _lt, "<=": _le, ">": _gt, ">=": _ge, "==": cel_eq, "!=": _ne, "in": _in,
}  # fmt: skip


def _variable(act: Activation, name: str) -> Any:
    try:
        return act[name]
    except KeyError:  # not a missing field: an unknown variable is the rule's error
        raise NameError(f"undeclared reference to {name!r}") from None


def _select(target: Any, name: str) -> Any:
    if isinstance(target, Mapping):
        return target[name]  # KeyError: no such key
    raise TypeError(f"no such overload: field selection on {type_of(target)}")


def _bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise TypeError(f"no such overload: {type_of(value)} used as bool")


def _size(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise TypeError(f"no such overload: size({type_of(value)})")


def _string_method(name: str) -> Callable[[Any, Any], bool]:
    def method(target: Any, arg: Any) -> bool:
        if not isinstance(target, str) or not isinstance(arg, str):
            raise TypeError(f"no such overload: {type_of(target)}.{name}({type_of(arg)})")
        if name == "startsWith":
            return target.startswith(arg)
        if name == "endsWith":
            return target.endswith(arg)
        return arg in target

    return method


_METHODS = {name: _string_method(name) for name in ("startsWith", "endsWith", "contains")}


# ---------------------------------------------------------------- compiler


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
    tree = _Parser(source).parse()
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
        return lambda act: _variable(act, name)
    if tag == "sel":
        target, name = node[1], node[2]
        if target[0] == "id" and target[1] not in TYPES:
            var = target[1]
            reads.add((var, name))

            def select_var(act: Activation) -> Any:
                holder = act[var] if var in act else _variable(act, var)
                if holder.__class__ is dict:
                    return holder[name]
                return _select(holder, name)

            return select_var
        inner = _compile(target, reads)
        return lambda act: _select(inner(act), name)
    if tag == "idx":
        target_fn, index_fn = _compile(node[1], reads), _compile(node[2], reads)
        return lambda act: _index(target_fn(act), index_fn(act))
    if tag == "un":
        operand = _compile(node[2], reads)
        if node[1] == "!":
            return lambda act: not _bool(operand(act))
        return lambda act: _negate(operand(act))
    if tag == "bin":
        special = _specialised(node, reads)
        if special is not None:
            return special
        op, left, right = node[1], _compile(node[2], reads), _compile(node[3], reads)
        fn = _BINARY[op]
        return lambda act: fn(left(act), right(act))
    if tag == "and":
        return _and(_compile(node[1], reads), _compile(node[2], reads))
    if tag == "or":
        return _or(_compile(node[1], reads), _compile(node[2], reads))
    if tag == "cond":
        cond, then, other = (_compile(n, reads) for n in node[1:])
        return lambda act: then(act) if _bool(cond(act)) else other(act)
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
    if op in _ORDER and right_node[0] == "lit" and _is_num(right_node[1]):
        left, bound, compare = _compile(left_node, reads), right_node[1], _ORDER[op]
        slow = _BINARY[op]

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
        return lambda act: _has(holder(act), field)
    if target is None and name in ("type", "size") and len(args) == 1:
        arg = _compile(args[0], reads)
        if name == "type":
            return lambda act: type_of(arg(act))
        return lambda act: _size(arg(act))
    if target is not None and name == "size" and not args:
        inner = _compile(target, reads)
        return lambda act: _size(inner(act))
    if target is not None and name in _METHODS and len(args) == 1:
        method = _METHODS[name]
        inner, arg = _compile(target, reads), _compile(args[0], reads)
        return lambda act: method(inner(act), arg(act))
    raise Unsupported(f"function {name}()")


def _has(holder: Any, field: str) -> bool:
    if isinstance(holder, Mapping):
        return field in holder
    raise TypeError(f"no such overload: has() on {type_of(holder)}")


def _index(target: Any, index: Any) -> Any:
    if isinstance(target, list | tuple):
        if not _is_num(index) or (isinstance(index, float) and not index.is_integer()):
            raise TypeError(f"no such overload: list[{type_of(index)}]")
        i = int(index)
        if not 0 <= i < len(target):
            raise IndexError(f"index {i} out of range")
        return target[i]
    if isinstance(target, Mapping):
        return target[index]
    raise TypeError(f"no such overload: {type_of(target)}[{type_of(index)}]")


def _negate(value: Any) -> Any:
    if isinstance(value, bool):  # the reference library reads -b as !b
        return not value
    if _is_num(value):
        return -value
    raise TypeError(f"no such overload: -{type_of(value)}")


def _decides(side: Fn, act: Activation, value: bool) -> bool:
    """``True`` when ``side`` yields ``value``; an error there is raised instead of the
    other side's (as the reference library does)."""
    return side(act) is value


def _and(left: Fn, right: Fn) -> Fn:
    def fn(act: Activation) -> bool:
        try:
            a = _bool(left(act))
        except Exception as error:
            if _decides(right, act, False):
                return False
            raise error from None
        if not a:
            return False
        return _bool(right(act))

    return fn


def _or(left: Fn, right: Fn) -> Fn:
    def fn(act: Activation) -> bool:
        try:
            a = _bool(left(act))
        except Exception as error:
            if _decides(right, act, True):
                return True
            raise error from None
        if a:
            return True
        return _bool(right(act))

    return fn
