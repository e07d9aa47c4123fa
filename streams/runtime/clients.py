"""The one factory of Kafka clients: every aiokafka producer, consumer and admin client of
CRM Pulse outside the worker's Faust app is built here, from :class:`Settings`.

Every client gets the bootstrap servers and a client id ``<app_id>-<role>`` (the role names
the part in the broker's logs, metrics and quotas: ``notify``, ``rules``, ``simulator``…).
Producers also get ``acks="all"``, ``max_request_size`` = ``max_message_bytes`` (the
broker's limit, as for the worker's Faust producer) and ``request_timeout_ms`` =
``producer_request_timeout_s``. Consumers and admin clients keep aiokafka's defaults beyond
the connection (no setting exists for them). Keyword overrides win over every default,
explicitly, at the call site: ``new_consumer(settings, "notify", group_id=...)``.

There are no security settings (TLS, SASL) yet: when they come, :func:`connection` adds
them and every client has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from streams.settings import Settings

if TYPE_CHECKING:  # aiokafka is imported when a client is built: commands stay quick to start
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient


def connection(settings: Settings, role: str) -> dict[str, Any]:
    """What every client gets: where the brokers are and who is asking."""
    if not role:
        raise ValueError("a Kafka client needs a role (part of its client id)")
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.app_id}-{role}",
    }


def producer_config(settings: Settings, role: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`AIOKafkaProducer`: the defaults, then ``overrides``."""
    return {
        **connection(settings, role),
        "acks": "all",
        "max_request_size": settings.max_message_bytes,
        "request_timeout_ms": round(settings.producer_request_timeout_s * 1000),
        **overrides,
    }


def consumer_config(settings: Settings, role: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`AIOKafkaConsumer` (topics aside)."""
    return {**connection(settings, role), **overrides}


def admin_config(settings: Settings, role: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of :class:`AIOKafkaAdminClient`."""
    return {**connection(settings, role), **overrides}


def new_producer(settings: Settings, role: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer (not started: the caller starts and stops it)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(**producer_config(settings, role, **overrides))


def new_consumer(settings: Settings, role: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer of ``topics`` (none: assign partitions later; not started)."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, **consumer_config(settings, role, **overrides))


def new_admin(settings: Settings, role: str, **overrides: Any) -> AIOKafkaAdminClient:
    """An admin client (not started: the caller starts and closes it)."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**admin_config(settings, role, **overrides))


async def behind(consumer: Any, ends: Mapping[Any, int]) -> bool:
    """``True`` while the consumer has not reached ``ends`` on some partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False
