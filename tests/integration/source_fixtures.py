"""Fixtures of the source tests: a real PostgreSQL and a real Kafka Connect with Debezium,
started by the project's own launchers (:mod:`streams.runtime.postgres`,
:mod:`streams.runtime.connect`). If one cannot start, the test fails with its log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.runtime.broker import LocalKafka
from streams.runtime.connect import ConnectError, LocalConnect
from streams.runtime.postgres import LocalPostgres, PostgresError


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    try:
        server.start()
        server.load_schema()
    except PostgresError as exc:
        pytest.fail(f"the local PostgreSQL did not start:\n{exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def connect(kafka: LocalKafka) -> Iterator[LocalConnect]:
    worker = LocalConnect(
        bootstrap=kafka.bootstrap,
        cache_dir=kafka.cache_dir,
        kafka_version=kafka.version,
        schemas_enable=True,  # the schema/payload envelope: dates and decimals typed
    )
    try:
        worker.start()
    except ConnectError as exc:
        pytest.fail(f"Kafka Connect did not start:\n{exc}", pytrace=False)
    yield worker
    worker.stop()
