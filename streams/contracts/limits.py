"""The bounds of the input contract: what a ``ChangeEvent``'s ``fields`` may hold.

Every cap has one reason, written beside it and in docs/events.md. A value beyond a cap is
refused at decoding with a dead-letter reason (``too_large`` or ``out_of_range``) and the
dotted path of the first offending value (``fields.amount``), so no later stage (state
merge, CEL, templates, orjson, ``Decimal`` in the KPIs) ever meets it.

Two values are normalised instead of refused: integers beyond ±2^53 (not exact as a
double, and orjson cannot write beyond 64 bits) become their exact decimal string, and an
``owner_id`` written as an integer becomes its string.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic_core import PydanticCustomError

#: Default per-event byte limit (setting ``CRM_PULSE_MAX_EVENT_BYTES``): a quarter of the
#: broker's default 1 MiB message limit, so the refused record plus its dead-letter header
#: always fits on the DLQ and the state of a record after one event stays well under it.
MAX_EVENT_BYTES = 256 * 1024
#: Segments in the path of any value inside ``fields`` (``fields.a.b`` has 2). CRM payloads
#: nest 2-4 levels (address objects, Debezium before/after); deeper JSON is hostile, and
#: recursive stages (orjson writes at most 254 levels, CEL, templates) stay far from limits.
MAX_DEPTH = 16
#: Members of one object inside ``fields`` (``fields`` itself included): a full CRM record
#: has a few hundred fields; bounds the work of the merge and of the diff per event.
MAX_MEMBERS = 1000
#: Items of one array inside ``fields``, and names in ``changed``.
MAX_ITEMS = 1000
#: Characters of a field name (object key): CRM API names are under 100 characters.
MAX_NAME_CHARS = 256
#: Characters of one string inside ``fields``: a text attribute, not a document. Keeps a
#: rendered alert (a few placeholders) in the tens of KiB and one field from filling a state.
MAX_STRING_CHARS = 16_384
#: Largest magnitude of a fractional or exponent number (a JSON number with ``.`` or ``e``):
#: money up to 10^15 is exact to the cent as int64 cents (10^17) and as ``Decimal`` within
#: its 28 digits, with room to sum many of them.
MAX_ABS_NUMBER = 1e15
#: Integers within ±2^53 are exact as doubles (CEL, JavaScript); beyond they become strings.
EXACT_INT = 2**53
#: Integers must be under 10^40 in magnitude (any 128-bit id fits); longer ones are refused.
MAX_ABS_INT = 10**40
#: Top-level fields holding money (the amount the KPIs sum): a number, or a numeric string,
#: must lie within ±MAX_ABS_NUMBER; large integers are refused there, not turned into text.
MONEY_FIELDS = frozenset({"amount"})
#: Fields holding an owner id: an integer there becomes its decimal string.
OWNER_FIELDS = frozenset({"owner_id"})


def bound_error(reason: str, path: str, detail: str) -> PydanticCustomError:
    """A validation error whose type is the dead-letter reason, with the offending path."""
    return PydanticCustomError(reason, "{detail}", {"detail": detail, "path": path})


class _Bound(Exception):
    """A broken bound found below a container; the container adds the path."""

    def __init__(self, reason: str, detail: str, path: str = "") -> None:
        super().__init__(detail)
        self.reason, self.detail, self.path = reason, detail, path


def _plain(obj: dict[str, Any]) -> bool:
    """True when ``obj`` is flat and every value is plainly within bounds (the common case).

    One pass without calls; anything else (containers, big numbers, money text, an owner id
    that is not text) takes the full walk, which normalises and names the offending path.
    """
    if len(obj) > MAX_MEMBERS:
        return False
    for name, value in obj.items():
        if len(name) > MAX_NAME_CHARS:
            return False
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_CHARS:
                return False
        elif kind is float or kind is int:
            if not -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:
                return False
        elif kind is not bool and value is not None:
            return False
    amount = obj.get("amount")
    owner = obj.get("owner_id")
    return type(amount) is not str and (owner is None or type(owner) is str)


def check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` within every bound, normalised; raises the first bound it breaks.

    Returns the same dict when nothing needs normalising (the common case: no copy).
    """
    if _plain(fields):
        return fields
    try:
        out = _check_object(fields, 1)
        for name in MONEY_FIELDS.intersection(out):
            _check_money(out[name], name)
        for name in OWNER_FIELDS.intersection(out):
            value = out[name]
            if value is None or type(value) is str:
                continue
            if type(value) is not int:
                raise _Bound("invalid_field", "an owner id must be a string or an integer", name)
            out = out if out is not fields else dict(out)
            out[name] = str(value)
    except _Bound as bound:
        raise bound_error(bound.reason, _join("fields", bound.path), bound.detail) from None
    return out


def _check_money(value: Any, name: str) -> None:
    if type(value) is str:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return  # not a number: the KPIs count it as a missing amount
        if number.is_finite() and abs(number) <= MAX_ABS_NUMBER:
            return
    elif type(value) is not int or abs(value) <= MAX_ABS_NUMBER:
        return  # floats were bounded by the walk; None, bool and containers are no amount
    raise _Bound("out_of_range", f"a money amount must be within ±{MAX_ABS_NUMBER:.0e}", name)


def _scalar(value: Any) -> Any:
    """A scalar within bounds (possibly normalised), or raises :class:`_Bound`."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING_CHARS:
            detail = f"a string of {len(value)} characters (at most {MAX_STRING_CHARS})"
            raise _Bound("too_large", detail)
        return value
    if kind is int:
        if -EXACT_INT <= value <= EXACT_INT:
            return value
        if -MAX_ABS_INT < value < MAX_ABS_INT:
            return str(value)  # exact as text; a double would round it
        raise _Bound("out_of_range", "an integer must have at most 40 digits")
    if kind is float:
        if -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:  # NaN fails both comparisons
            return value
        raise _Bound("out_of_range", f"a number must be finite and within ±{MAX_ABS_NUMBER:.0e}")
    return value  # bool, None


def _join(name: str | int, below: str) -> str:
    return f"{name}.{below}" if below else str(name)


def _check_value(value: Any, level: int) -> Any:
    """``value`` (sitting at ``level``) within bounds: the same value, or a normalised copy."""
    kind = type(value)
    if kind is dict:
        return _check_object(value, level)
    if kind is list:
        return _check_array(value, level)
    return _scalar(value)


def _check_object(obj: dict[str, Any], level: int) -> dict[str, Any]:
    """``obj`` (whose members sit at ``level``) within bounds; paths are relative to it."""
    if len(obj) > MAX_MEMBERS:
        raise _Bound("too_large", f"an object of {len(obj)} members (at most {MAX_MEMBERS})")
    if obj and level > MAX_DEPTH:
        raise _Bound("too_large", f"nested deeper than {MAX_DEPTH} levels")
    out = obj
    for name, value in obj.items():
        try:
            if len(name) > MAX_NAME_CHARS:
                raise _Bound("too_large", f"a field name over {MAX_NAME_CHARS} characters")
            new = _check_value(value, level + 1)
        except _Bound as bound:
            label = name if len(name) <= MAX_NAME_CHARS else name[:40] + "…"
            bound.path = _join(label, bound.path)
            raise
        if new is not value:
            if out is obj:
                out = dict(obj)
            out[name] = new
    return out


def _check_array(items: list[Any], level: int) -> list[Any]:
    if len(items) > MAX_ITEMS:
        raise _Bound("too_large", f"an array of {len(items)} items (at most {MAX_ITEMS})")
    if items and level > MAX_DEPTH:
        raise _Bound("too_large", f"nested deeper than {MAX_DEPTH} levels")
    out = items
    for index, value in enumerate(items):
        try:
            new = _check_value(value, level + 1)
        except _Bound as bound:
            bound.path = _join(index, bound.path)
            raise
        if new is not value:
            if out is items:
                out = list(items)
            out[index] = new
    return out
