"""The Kafka client factory: which settings reach which client, overrides, and that no
other module builds an aiokafka client by hand. No broker: clients are built, never started."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from streams.runtime.clients import (
    admin_config,
    behind,
    connection,
    consumer_config,
    new_admin,
    new_consumer,
    new_producer,
    producer_config,
)
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PRODUCER_ONLY = {"acks", "max_request_size", "request_timeout_ms"}


def settings(**overrides: Any) -> Settings:
    return Settings(
        broker="kafka://k1:9092;kafka://k2:9093", app_id="pulse-a", max_message_bytes=2_097_152,
        producer_request_timeout_s=7.5, **overrides,
    )  # fmt: skip


def test_every_client_gets_the_brokers_and_a_client_id_naming_its_role() -> None:
    s = settings()
    expected = {"bootstrap_servers": "k1:9092,k2:9093", "client_id": "pulse-a-notify"}
    assert connection(s, "notify") == expected
    for config in (producer_config, consumer_config, admin_config):
        assert config(s, "notify").items() >= expected.items(), config.__name__


def test_producers_get_acks_all_the_message_limit_and_the_request_timeout() -> None:
    config = producer_config(settings(), "rules")
    assert config["acks"] == "all"
    assert config["max_request_size"] == 2_097_152
    assert config["request_timeout_ms"] == 7_500


def test_consumers_and_admin_clients_get_no_producer_settings() -> None:
    s = settings()
    assert not PRODUCER_ONLY & consumer_config(s, "feed").keys()
    assert not PRODUCER_ONLY & admin_config(s, "topics").keys()


def test_keyword_overrides_win_and_pass_through() -> None:
    s = settings()
    config = producer_config(s, "simulator", acks=1, linger_ms=5, bootstrap_servers="other:1")
    assert (config["acks"], config["linger_ms"], config["bootstrap_servers"]) == (1, 5, "other:1")
    assert config["max_request_size"] == 2_097_152  # the rest stays
    consumer = consumer_config(s, "notify", group_id="g", enable_auto_commit=False)
    assert (consumer["group_id"], consumer["enable_auto_commit"]) == ("g", False)
    assert admin_config(s, "topics", client_id="mine")["client_id"] == "mine"


def test_a_client_without_a_role_is_refused() -> None:
    with pytest.raises(ValueError, match="role"):
        connection(settings(), "")


def test_the_built_clients_carry_the_configuration() -> None:
    """What the config functions say is what aiokafka's objects hold (built, not started)."""

    async def build() -> None:
        s = settings()
        producer = new_producer(s, "replay", linger_ms=5)
        consumer = new_consumer(s, "tail", "crm.alerts", "crm.silences", group_id=None)
        admin = new_admin(s, "topics")
        try:
            assert producer.client._bootstrap_servers == "k1:9092,k2:9093"
            assert producer.client._client_id == "pulse-a-replay"
            assert producer._max_request_size == 2_097_152
            assert producer._request_timeout_ms == 7_500
            assert producer._sender._acks == -1  # "all"
            assert consumer._client._client_id == "pulse-a-tail"
            assert consumer._client._bootstrap_servers == "k1:9092,k2:9093"
            assert consumer._group_id is None
            assert set(consumer.subscription()) == {"crm.alerts", "crm.silences"}
            assert admin._client._client_id == "pulse-a-topics"
        finally:
            await producer.stop()
            await consumer.stop()
            await admin.close()

    asyncio.run(build())


class _Positions:
    def __init__(self, positions: dict[str, int]) -> None:
        self.positions = positions

    async def position(self, tp: str) -> int:
        return self.positions[tp]


def test_behind_until_every_partition_reached_its_end() -> None:
    ends = {"p0": 5, "p1": 3}
    assert asyncio.run(behind(_Positions({"p0": 5, "p1": 2}), ends)) is True
    assert asyncio.run(behind(_Positions({"p0": 5, "p1": 3}), ends)) is False
    assert asyncio.run(behind(_Positions({}), {})) is False


def test_no_module_builds_an_aiokafka_client_by_hand() -> None:
    """Every producer, consumer and admin client of streams/ comes from the factory."""
    built = re.compile(r"\bAIOKafka(Producer|Consumer|AdminClient)\(")
    factory = REPO / "streams" / "runtime" / "clients.py"
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "streams").rglob("*.py"))
        if path != factory
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == []
    assert built.search(factory.read_text())  # the pattern does find a construction
