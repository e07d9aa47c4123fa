"""Open episodes of deleted or retyped rules: moved to :mod:`streams.judge.retire` (this
name is kept for callers)."""

from streams.judge.retire import (
    RULE_CHANGED,
    RULE_DELETED,
    retire,
    retire_record,
    retired_ids,
    retired_rules,
)

__all__ = [
    "RULE_CHANGED", "RULE_DELETED", "retire", "retire_record", "retired_ids", "retired_rules",
]  # fmt: skip
