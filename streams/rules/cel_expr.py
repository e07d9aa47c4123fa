"""CEL expressions compiled once per rule version (never Python ``eval``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cel

from streams.rules.cel_fast import FastCel, Unsupported, compile_fast


class CelSource(Protocol):
    """What a rule evaluates against: the plain activation and, lazily, the library's
    converted context (:class:`streams.rules.change.Change` provides both)."""

    def cel_variables(self) -> Mapping[str, Any]: ...

    def cel_context(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class CelExpression:
    source: str
    program: Any
    variables: frozenset[str]
    #: The closure compiled from the CEL subset (:mod:`streams.rules.cel_fast`), if any.
    fast: FastCel | None = None

    @property
    def reads(self) -> frozenset[tuple[str, str]] | None:
        """``(variable, field)`` pairs the expression reads; ``None`` when unknown."""
        return self.fast.reads if self.fast is not None else None

    def evaluate_bool(self, activation: Mapping[str, Any] | Any) -> bool:
        """Evaluate to a boolean; a missing field (``KeyError``) counts as not holding.

        ``activation`` is a plain mapping or a :func:`cel_context` built once and shared.

        Type errors (e.g. comparing a string amount with a number) propagate: the rule set
        isolates them, counts them and logs them.
        """
        try:
            if self.fast is not None and (
                activation.__class__ is dict or isinstance(activation, Mapping)
            ):
                result = self.fast.fn(activation)
            else:
                result = self.program.execute(activation)
        except KeyError:
            return False
        if not isinstance(result, bool):
            raise TypeError(f"CEL expression returned {type(result).__name__}, not bool")
        return result

    def holds(self, source: CelSource) -> bool:
        """Evaluate on a change: compiled closure when there is one, else the library.

        The closure path is :meth:`evaluate_bool` inlined (it runs for most rule and change
        pairs): a missing field does not hold, a non-boolean result is an error."""
        fast = self.fast
        if fast is None:
            return self.evaluate_bool(source.cel_context())
        try:
            result = fast.fn(source.cel_variables())
        except KeyError:
            return False
        if result is True or result is False:
            return result
        raise TypeError(f"CEL expression returned {type(result).__name__}, not bool")


def compile_cel(source: str) -> CelExpression:
    """Compile a CEL expression; raises ``ValueError`` with the parser's message.

    The library checks and keeps every expression; the common subset is also compiled to
    a closure, used on the hot path (same results, see :mod:`streams.rules.cel_fast`).
    """
    try:
        program = cel.compile(source)
    except Exception as exc:  # the binding raises ValueError, older ones RuntimeError
        raise ValueError(str(exc).strip().splitlines()[0] if str(exc) else repr(exc)) from exc
    try:
        fast: FastCel | None = compile_fast(source)
    except Unsupported:
        fast = None
    return CelExpression(
        source=source, program=program, variables=frozenset(program.variables()), fast=fast
    )


def cel_context(variables: Mapping[str, Any]) -> Any:
    """A reusable CEL context: the variables are converted once, on first evaluation."""
    return cel.Context(dict(variables))
