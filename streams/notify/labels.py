"""Bounded, escaped label values for Alertmanager (the full text stays in annotations)."""

from __future__ import annotations

import unicodedata

#: Longest label value posted; longer values are cut and end with an ellipsis.
MAX_LABEL_LENGTH = 128
EMPTY = "none"


def bound_label(value: object, limit: int = MAX_LABEL_LENGTH) -> str:
    """One label value: control chars and separators -> spaces, trimmed, <= ``limit`` chars.

    Never empty (Alertmanager drops empty labels, which would merge distinct alerts).
    """
    if value is None:
        return EMPTY
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in str(value)).strip()
    if not text:
        return EMPTY
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
