"""Message templates: ``{path.to.value}`` placeholders, looked up safely (no format specs)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


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


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Replace each ``{path}`` by its value (``(none)`` when absent)."""
    return _PLACEHOLDER.sub(lambda m: _show(_lookup(m.group(1), variables)), template)
