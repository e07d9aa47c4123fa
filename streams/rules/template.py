"""Message templates: ``{path.to.value}`` placeholders, looked up safely (no format specs).

``[[ ... ]]`` is an optional section: it is kept only when every placeholder inside it has
a value (not absent, ``null`` or blank), and dropped whole otherwise, so
``"Lead[[ {lead.name}]] ({subject.id}) has no email"`` reads ``Lead L-7 (L-7)…`` or
``Lead (L-7)…`` and never prints a placeholder for nothing. Outside a section an absent
value renders as an empty string. Each value renders at most ``max_value`` characters
(a longer one ends with ``…``), so a 900,000-character field never makes a huge alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streams.jsonbytes import cut_text

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
#: An optional section or a placeholder, matched in one pass (a rendered value is never
#: read again as a template).
_PART = re.compile(r"\[\[(.*?)\]\]|" + _PLACEHOLDER.pattern, re.DOTALL)
#: Characters one placeholder renders at most.
MAX_VALUE_CHARS = 300


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def _lookup(path: str, variables: Mapping[str, Any]) -> Any:
    value: Any = variables
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _show(value: Any, max_value: int) -> str:
    if value is None:
        return ""
    try:
        if isinstance(value, float):
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
            text = f"{value:.6e}"  # str() of a huge int is slow and unreadable
        else:
            text = str(value)
    except (ValueError, OverflowError, RecursionError):  # an int beyond any float, say
        text = "[unprintable value]"
    return cut_text(text, max_value)


def _fill(template: str, variables: Mapping[str, Any], max_value: int) -> str:
    return _PLACEHOLDER.sub(lambda m: _show(_lookup(m.group(1), variables), max_value), template)


def _part(match: re.Match[str], variables: Mapping[str, Any], max_value: int) -> str:
    inner = match.group(1)
    if inner is None:
        return _show(_lookup(match.group(2), variables), max_value)
    if any(_absent(_lookup(path, variables)) for path in _PLACEHOLDER.findall(inner)):
        return ""
    return _fill(inner, variables, max_value)


def render(template: str, variables: Mapping[str, Any], max_value: int = MAX_VALUE_CHARS) -> str:
    """Replace each ``{path}`` by its value; ``[[...]]`` sections only when all are present."""
    if "[[" not in template:
        return _fill(template, variables, max_value)
    return _PART.sub(lambda m: _part(m, variables, max_value), template)
