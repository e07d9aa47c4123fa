"""Bearer-token checks of the HTTP API (pure; constant-time comparison)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from streams.errors import PulseError
from streams.settings import Settings


class ApiConfigError(PulseError, RuntimeError):
    """The API cannot start with these settings (e.g. no token)."""


def require_token_config(settings: Settings) -> None:
    """Refuse to start without a token, unless auth is explicitly disabled."""
    token = settings.api_token
    if settings.api_auth_disabled:
        return
    if token is None or not token.get_secret_value().strip():
        raise ApiConfigError(
            "the rules API needs a bearer token: set CRM_PULSE_API_TOKEN "
            "(or, for a local sandbox only, CRM_PULSE_API_AUTH_DISABLED=true)"
        )


def authorized(header: str | None, token: SecretStr | None, *, disabled: bool = False) -> bool:
    """``Authorization: Bearer <token>`` matches the configured token.

    With ``disabled`` (explicitly set in settings) every request is allowed. The
    comparison takes the same time wherever the first difference is.
    """
    if disabled:
        return True
    if token is None or not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = token.get_secret_value().encode()
    return bool(expected) and hmac.compare_digest(value.strip().encode(), expected)
