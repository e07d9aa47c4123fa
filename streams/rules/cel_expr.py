"""CEL expressions compiled once per rule version (never Python ``eval``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cel


@dataclass(frozen=True, slots=True)
class CelExpression:
    source: str
    program: Any
    variables: frozenset[str]

    def evaluate_bool(self, activation: Mapping[str, Any] | Any) -> bool:
        """Evaluate to a boolean; a missing field (``KeyError``) counts as not holding.

        ``activation`` is a plain mapping or a :func:`cel_context` built once and shared.

        Type errors (e.g. comparing a string amount with a number) propagate: the rule set
        isolates them, counts them and logs them.
        """
        try:
            result = self.program.execute(activation)
        except KeyError:
            return False
        if not isinstance(result, bool):
            raise TypeError(f"CEL expression returned {type(result).__name__}, not bool")
        return result


def compile_cel(source: str) -> CelExpression:
    """Compile a CEL expression; raises ``ValueError`` with the parser's message."""
    try:
        program = cel.compile(source)
    except Exception as exc:  # the binding raises ValueError, older ones RuntimeError
        raise ValueError(str(exc).strip().splitlines()[0] if str(exc) else repr(exc)) from exc
    return CelExpression(source=source, program=program, variables=frozenset(program.variables()))


def cel_context(variables: Mapping[str, Any]) -> Any:
    """A reusable CEL context: the variables are converted once, on first evaluation."""
    return cel.Context(dict(variables))
