"""The closed registry of source types: ``type`` -> its translator class.

Nothing named in a sources file is imported: the four types are listed here, and a source
of any other type is refused when the file is validated (the pydantic union on ``type``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.decode import DEFAULT_LIMITS, DecodeLimits
from streams.sources.base import SourceType, Translator
from streams.sources.config import (
    DebeziumSource,
    HubspotWebhookSource,
    MappingSource,
    SalesforceCdcSource,
    SourceConfig,
)
from streams.sources.debezium import DebeziumTranslator
from streams.sources.declarative import MappingTranslator
from streams.sources.hubspot import HubspotWebhookTranslator
from streams.sources.salesforce import SalesforceCdcTranslator

#: source type -> (its config model, its translator class).
REGISTRY: dict[SourceType, tuple[type[Any], Callable[[Any, DecodeLimits], Translator]]] = {
    SourceType.DEBEZIUM: (DebeziumSource, DebeziumTranslator),
    SourceType.SALESFORCE_CDC: (SalesforceCdcSource, SalesforceCdcTranslator),
    SourceType.HUBSPOT_WEBHOOK: (HubspotWebhookSource, HubspotWebhookTranslator),
    SourceType.MAPPING: (MappingSource, MappingTranslator),
}


def build_translator(source: SourceConfig, limits: DecodeLimits = DEFAULT_LIMITS) -> Translator:
    """The translator of one configured source (``limits``: the worker's input bounds)."""
    model, make = REGISTRY[SourceType(source.type)]
    if not isinstance(source, model):
        raise TypeError(f"source {source.id!r}: {type(source).__name__} is not a {model.__name__}")
    return make(source, limits)
