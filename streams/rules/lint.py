"""Warnings on valid rules that will likely misbehave at run time (pure).

Record numbers reach CEL as doubles, and CEL has no int/double arithmetic: an integer
literal next to ``*``, ``/``, ``+``, ``-`` or ``%`` (``deal.amount * 10``) raises on every
record. Comparisons (``deal.amount > 1000``) are fine and not reported.
"""

from __future__ import annotations

import re

from streams.rules.model import Rule

_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_INT_ARITH = re.compile(
    r"(?:[*/%+]|(?<=[\w)\]])\s*-)\s*(?<![\w.])(\d+)(?![\w.])"
    r"|(?<![\w.])(\d+)(?![\w.])\s*[*/%+-]"
)


def int_arithmetic(source: str) -> list[str]:
    """Integer literals used in arithmetic in a CEL expression (strings ignored)."""
    code = _STRING.sub('""', source)
    return [a or b for a, b in _INT_ARITH.findall(code)]


def rule_warnings(rule: Rule) -> list[tuple[str, str]]:
    """``(field, message)`` warnings of one valid rule."""
    found = []
    for field in ("condition", "resolve_when"):
        source = getattr(rule, field, None)
        for literal in int_arithmetic(source or ""):
            found.append((field, f"integer literal {literal} in arithmetic: record numbers "
                          f"are doubles in CEL, write {literal}.0"))  # fmt: skip
    return found
