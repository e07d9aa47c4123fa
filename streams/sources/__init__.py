"""CRM sources: pure translators from a CRM's raw payload to ChangeEvents (or a refusal),
one module per source type.

See :mod:`streams.sources.base` for the API and docs/sources.md for each source type.
"""

from streams.sources.base import (
    Gap,
    Refusal,
    SourceRefusalReason,
    SourceType,
    Translation,
    Translator,
)
from streams.sources.config import SourceConfigError, SourcesConfig, load_sources, parse_sources
from streams.sources.registry import build_translator
from streams.sources.signatures import verify_hmac_sha256, verify_hubspot_signature_v3

__all__ = [
    "Gap",
    "Refusal",
    "SourceConfigError",
    "SourceRefusalReason",
    "SourceType",
    "SourcesConfig",
    "Translation",
    "Translator",
    "build_translator",
    "load_sources",
    "parse_sources",
    "verify_hmac_sha256",
    "verify_hubspot_signature_v3",
]
