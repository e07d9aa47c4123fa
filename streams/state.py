"""Entity state, kept under this name for its callers: the typed state and its one codec
live in :mod:`streams.judge.state` (format, replay protection, size cap). The functions here
read and write the stored form (a dict with the changelog's short keys) for the scans that
only look at a few keys (gauges, retention, the timer index)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.judge.state import (
    STATE_MAX_BYTES,
    applied_at,
    fit_state,
    merge_fields,
    record_key,
    state_of,
)
from streams.judge.state import decode_dict as decode_state
from streams.judge.state import encode_dict as encode_state

EntityState = dict[str, Any]

__all__ = [
    "STATE_MAX_BYTES", "EntityState", "applied_at", "decode_state", "encode_state",
    "fit_state", "merge_fields", "out_of_order", "record_key", "replayed",
]  # fmt: skip


def replayed(state: Mapping[str, Any], position: tuple[int, int]) -> bool:
    return state_of(state).replayed(position)


def out_of_order(state: Mapping[str, Any], occurred: float) -> bool:
    return state_of(state).out_of_order(occurred)
