"""Request signatures of HTTP sources, checked before the body is read as data.

HubSpot (``X-HubSpot-Signature-v3``): base64 of HMAC-SHA256, keyed with the app's client
secret, over ``method + uri + body + timestamp`` where ``timestamp`` is the
``X-HubSpot-Request-Timestamp`` header (epoch milliseconds); a request whose timestamp is
more than 5 minutes old is refused, whatever its signature. HubSpot decodes a few
URL-encoded characters of the URI before signing (``%3A`` ``:``, ``%2F`` ``/``, ``%3F``
``?``, ``%40`` ``@``, ``%21`` ``!``, ``%24`` ``$``, ``%27`` ``'``, ``%28`` ``(``, ``%29``
``)``, ``%2A`` ``*``, ``%2C`` ``,``, ``%3B`` ``;``); so does the check.

Mapping sources: ``sha256=<hex>`` (or the bare hex) of HMAC-SHA256 over the raw body, keyed
with the shared secret, in the transport's ``signature_header``.

Comparisons are constant-time; the secret is a :class:`~pydantic.SecretStr`, read only here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from pydantic import SecretStr

#: HubSpot refuses requests older than this; so do we.
HUBSPOT_MAX_AGE_S = 300.0
_HUBSPOT_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def _hubspot_uri(uri: str) -> str:
    for encoded, char in _HUBSPOT_DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def hubspot_signature_v3(
    secret: SecretStr, method: str, uri: str, body: bytes, timestamp: str
) -> str:
    """The ``X-HubSpot-Signature-v3`` value HubSpot sends for this request."""
    message = method.upper().encode() + _hubspot_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_hubspot_signature_v3(
    secret: SecretStr,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: datetime,
    max_age_s: float = HUBSPOT_MAX_AGE_S,
) -> bool:
    """Whether the request is HubSpot's, signed with ``secret`` at most ``max_age_s`` ago.

    ``uri`` is the full URI HubSpot called (scheme, host, path and query); ``timestamp``
    the ``X-HubSpot-Request-Timestamp`` header (epoch ms). A missing or non-numeric
    timestamp, a timestamp older than ``max_age_s`` (or more than that ahead) and a wrong
    signature are all refused.
    """
    if not timestamp or not signature:
        return False
    try:
        sent_ms = int(timestamp.strip())
    except ValueError:
        return False
    if abs(now.timestamp() * 1000.0 - sent_ms) > max_age_s * 1000.0:
        return False
    expected = hubspot_signature_v3(secret, method, uri, body, timestamp.strip())
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def hmac_sha256_hex(secret: SecretStr, body: bytes) -> str:
    """``sha256=<hex>``: the signature a mapping source's sender puts in its header."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_hmac_sha256(secret: SecretStr, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (``sha256=<hex>`` or bare hex) is the body's HMAC-SHA256."""
    if not signature:
        return False
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[7:]
    expected = hmac_sha256_hex(secret, body)[7:]
    return hmac.compare_digest(expected.encode(), given.lower().encode())
