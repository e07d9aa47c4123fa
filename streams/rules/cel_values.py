"""CEL value semantics for the compiled subset (:mod:`streams.rules.cel_fast`): types,
equality, operators, field selection, indexing, with the reference library's results and
errors (``KeyError`` for a missing key, ``TypeError`` for a type mismatch); and
:func:`as_cel`, which makes a record's JSON values friendly to CEL (numbers as doubles)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Activation = Mapping[str, Any]


class CelType:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TYPE_NAMES = ("bool", "int", "double", "string", "null_type", "list", "map", "type")
TYPES = {name: CelType(name) for name in _TYPE_NAMES}


def type_of(value: Any) -> CelType:
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
    if isinstance(value, CelType):
        return TYPES["type"]
    raise TypeError(f"no CEL type for {type(value).__name__}")


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_SIMPLE = frozenset({str, float, bool, type(None)})


def cel_eq(a: Any, b: Any) -> bool:
    kind = a.__class__
    if kind is b.__class__ and kind in _SIMPLE:
        return bool(a == b)
    if is_num(a) and is_num(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(cel_eq(a[k], b[k]) for k in a)
    if type_of(a) is not type_of(b):
        return False
    return bool(a == b)


def _ordered(a: Any, b: Any) -> None:
    if is_num(a) and is_num(b):
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


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod,
    "<": _lt, "<=": _le, ">": _gt, ">=": _ge, "==": cel_eq, "!=": _ne, "in": _in,
}  # fmt: skip


def variable(act: Activation, name: str) -> Any:
    try:
        return act[name]
    except KeyError:  # not a missing field: an unknown variable is the rule's error
        raise NameError(f"undeclared reference to {name!r}") from None


def select(target: Any, name: str) -> Any:
    if isinstance(target, Mapping):
        return target[name]  # KeyError: no such key
    raise TypeError(f"no such overload: field selection on {type_of(target)}")


def as_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise TypeError(f"no such overload: {type_of(value)} used as bool")


def size(value: Any) -> int:
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


METHODS = {name: _string_method(name) for name in ("startsWith", "endsWith", "contains")}


def has(holder: Any, field: str) -> bool:
    if isinstance(holder, Mapping):
        return field in holder
    raise TypeError(f"no such overload: has() on {type_of(holder)}")


def subscript(target: Any, index: Any) -> Any:
    if isinstance(target, list | tuple):
        if not is_num(index) or (isinstance(index, float) and not index.is_integer()):
            raise TypeError(f"no such overload: list[{type_of(index)}]")
        i = int(index)
        if not 0 <= i < len(target):
            raise IndexError(f"index {i} out of range")
        return target[i]
    if isinstance(target, Mapping):
        return target[index]
    raise TypeError(f"no such overload: {type_of(target)}[{type_of(index)}]")


def negate(value: Any) -> Any:
    if isinstance(value, bool):  # the reference library reads -b as !b
        return not value
    if is_num(value):
        return -value
    raise TypeError(f"no such overload: -{type_of(value)}")


_FLAT = frozenset({str, float, bool, type(None)})


def _double(value: int) -> float:
    """An int as a double; one beyond the double range is +/- infinity (never raises)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def as_cel(value: Any) -> Any:
    """A JSON value made friendly to CEL: every number (not bool) becomes a double.

    CEL never mixes int and double in arithmetic; CRM sources send ``1200`` and ``1200.0``
    for the same field. With doubles everywhere, rule authors compare and multiply record
    values freely (literals in arithmetic are then written ``1.5``, ``10.0``).
    """
    kind = value.__class__
    if kind is dict:  # a record: one pass, recursing only into nested containers
        return {
            str(k): _double(v) if v.__class__ is int else v if v.__class__ in _FLAT else as_cel(v)
            for k, v in value.items()
        }
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return _double(value)
    if isinstance(value, Mapping):
        return {str(k): as_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_cel(v) for v in value]
    return value
