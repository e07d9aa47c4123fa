"""The parser of the compiled CEL subset (:mod:`streams.rules.cel_fast`): source text to a
syntax tree of plain tuples; anything beyond the subset raises :class:`Unsupported`."""

from __future__ import annotations

import re
from typing import Any


class Unsupported(Exception):
    """The expression uses CEL beyond the compiled subset (the library evaluates it)."""


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


def parse(source: str) -> Node:
    """The syntax tree of ``source``; raises :class:`Unsupported` beyond the subset."""
    return _Parser(source).parse()
