"""Reading and writing the compacted rules topic (Kafka I/O), shared by the worker's rule
feed, ``crm-pulse rules apply|list|diff|test`` and the HTTP API. What the records mean is
the pure :mod:`streams.rules.catalog`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from streams.rules.catalog import RuleCatalog
from streams.runtime.clients import behind, new_admin, new_consumer, new_producer
from streams.settings import Settings

log = logging.getLogger(__name__)

Record = tuple[bytes | None, bytes | None]
#: Client id suffix of this module's Kafka clients.
ROLE = "rules"


async def ensure_rules_topic(settings: Settings) -> list[int]:
    """Create the rules topic (1 partition, compacted) when missing; its partition ids."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from streams.runtime.topics import _wait_for_leaders, topic_specs

    parts, config = topic_specs(settings)[settings.rules_topic]
    name = settings.rules_topic
    admin = new_admin(settings, ROLE)
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            topic = NewTopic(
                name, num_partitions=parts, replication_factor=settings.topic_replicas,
                topic_configs=config,
            )  # fmt: skip
            try:
                await admin.create_topics([topic])
                log.info("created rules topic %s", name)
            except TopicAlreadyExistsError:
                pass
        await _wait_for_leaders(admin, [name])
        (described,) = await admin.describe_topics([name])
        return sorted(int(p["partition"]) for p in described["partitions"])
    finally:
        await admin.close()


async def open_rules_consumer(settings: Settings) -> tuple[Any, list[Any]]:
    """A started consumer (no group) assigned to every partition of the rules topic, at its
    beginning; the caller stops it."""
    from aiokafka import TopicPartition

    parts = await ensure_rules_topic(settings)
    consumer = new_consumer(
        settings, ROLE, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(settings.rules_topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
    except BaseException:
        await consumer.stop()
        raise
    return consumer, tps


async def read_records(settings: Settings, timeout: float = 30.0) -> list[Record]:
    """Every record of the rules topic up to its current end, in order."""
    import asyncio

    consumer, tps = await open_rules_consumer(settings)
    try:
        ends = await consumer.end_offsets(tps)
        records: list[Record] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await behind(consumer, ends):
            if loop.time() > deadline:
                raise TimeoutError(f"reading {settings.rules_topic} took over {timeout}s")
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for batch in batches.values():
                records.extend((r.key, r.value) for r in batch)
        return records
    finally:
        await consumer.stop()


async def read_catalog(settings: Settings) -> tuple[RuleCatalog, list[str]]:
    """The live catalog and the ids whose last record was rejected."""
    catalog = RuleCatalog()
    rejected: dict[str, bool] = {}
    for applied in catalog.apply_all(await read_records(settings)):
        rejected[applied.rule_id] = applied.outcome == "rejected"
    return catalog, sorted(rid for rid, bad in rejected.items() if bad and rid)


async def publish(settings: Settings, records: Iterable[Record]) -> int:
    """Send records to the rules topic and wait for every acknowledgement."""
    items = list(records)
    if not items:
        return 0
    producer = new_producer(settings, ROLE)
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(settings.rules_topic, key=key, value=value)
    finally:
        await producer.stop()
    return len(items)
