"""Bearer-token checks of the HTTP API."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.api.auth import ApiConfigError, authorized, require_token_config
from streams.settings import Settings

TOKEN = SecretStr("s3cret-token")


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret-token", True),
        ("bearer s3cret-token", True),
        ("Bearer s3cret-tokenx", False),
        ("Bearer s3cret-toke", False),
        ("Basic s3cret-token", False),
        ("s3cret-token", False),
        ("Bearer ", False),
        ("", False),
        (None, False),
    ],
)
def test_authorized(header: str | None, ok: bool) -> None:
    assert authorized(header, TOKEN) is ok


def test_no_configured_token_refuses_everything_unless_disabled() -> None:
    assert authorized("Bearer x", None) is False
    assert authorized(None, None, disabled=True) is True


def test_api_refuses_to_start_without_token() -> None:
    with pytest.raises(ApiConfigError, match="CRM_PULSE_API_TOKEN"):
        require_token_config(Settings(api_token=None))
    with pytest.raises(ApiConfigError):
        require_token_config(Settings(api_token=SecretStr("  ")))
    require_token_config(Settings(api_token=TOKEN))
    require_token_config(Settings(api_token=None, api_auth_disabled=True))


def test_token_never_printed() -> None:
    assert "s3cret" not in repr(Settings(api_token=TOKEN))
