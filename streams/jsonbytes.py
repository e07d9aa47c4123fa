"""JSON bytes of everything the worker writes: total (never raises on a JSON-like value) and
right-sized for values kept in memory.

**Total.** orjson refuses integers outside the 64-bit range (``TypeError: Integer exceeds
64-bit range``), containers nested deeper than 254 levels (``Recursion limit reached``) and
objects it does not know. A record field can hold any of them (a 21-digit ``external_id``
is valid JSON), and one unencodable state, alert or fact used to stop the worker. Every
encoder of the worker goes through :func:`dumps`: the fast path is ``orjson.dumps`` as is;
only when it raises is the value rebuilt by :func:`sanitise` (integers beyond 64 bits
become their decimal string, non-finite floats ``null``, containers deeper than
:data:`MAX_DEPTH` the marker string ``"[cut: nested too deep]"``, other objects their
``str``), which orjson always encodes.

**Right-sized.** orjson (3.13 here) returns its output in a buffer of about 4 KiB, however
short the JSON: ``tracemalloc`` counts 4,098 bytes for a 141-byte result, and keeping
200,000 of them grew the resident set by 786 MiB. A table of 100k records of about 500
bytes each then held 400 MiB instead of 50. Values written to a table (and kept by it until
the next write) are copied once to a bytes object of their own size (:func:`dumps_kept`);
a copy costs about half a microsecond. Messages that only pass through the producer do not
need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

#: Deepest container nesting kept by :func:`sanitise` (orjson's own limit is 254).
MAX_DEPTH = 64
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
DEEP_MARKER = "[cut: nested too deep]"


def sanitise(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data orjson always encodes (see the module docstring)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else int_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH and isinstance(value, Mapping | list | tuple | set | frozenset):
        return DEEP_MARKER
    if isinstance(value, Mapping):
        return {str(k): sanitise(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitise(v, depth + 1) for v in value]
    return str(value)


def int_text(value: int) -> str:
    """An integer's decimal text; one beyond Python's 4,300-digit limit is described."""
    try:
        return str(value)
    except ValueError:
        return f"[integer of {value.bit_length()} bits]"


def dumps(value: Any) -> bytes:
    """``orjson.dumps(value)``, or of :func:`sanitise` (value) when orjson refuses it."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return orjson.dumps(sanitise(value))


def dumps_kept(value: Any) -> bytes:
    """:func:`dumps` as a right-sized bytes object, for values kept in memory."""
    return memoryview(dumps(value)).tobytes()


def cut_text(text: str, limit: int, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``marker`` when cut."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(marker))
    return text[:keep] + marker[: limit - keep]
