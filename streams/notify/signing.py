"""HMAC-SHA256 signature of webhook bodies (documented in docs/notifications.md).

The signed string is ``f"{timestamp}.{body}"`` (timestamp: Unix seconds as ASCII, body:
the exact bytes posted); the header carries ``v1=<hex digest>``. A receiver recomputes it
with the shared secret, compares in constant time and refuses timestamps that are too old.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-CRM-Pulse-Signature"
TIMESTAMP_HEADER = "X-CRM-Pulse-Timestamp"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str, timestamp: str, body: bytes, header: str, now: float, tolerance_s: float = 300
) -> bool:
    """What a receiver does: right signature and a timestamp within ``tolerance_s`` of now."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), header)
