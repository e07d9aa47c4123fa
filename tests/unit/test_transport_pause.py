"""A partition Faust pauses is paused in the aiokafka client too: Faust's own pause only
stops handing records out, and a paused partition's fetched records held every fetch from
its broker back by up to 100 ms (aiokafka's ``prefetch_backoff``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.transport import BatchingConsumer

CHANGELOG = [TP("pulse-entity-state-changelog", p) for p in range(2)]
INPUT = TP("crm.events", 0)


def consumer(client: AIOKafkaConsumer | None) -> BatchingConsumer:
    """The batching consumer's pause bookkeeping over a real (unstarted) aiokafka client
    whose loop is the test's (the worker's runs in Faust's consumer thread)."""
    c = BatchingConsumer.__new__(BatchingConsumer)
    c._active_partitions = {INPUT, *CHANGELOG}
    c._paused_partitions = set()
    if client is not None:
        c._thread = SimpleNamespace(_consumer=client, thread_loop=asyncio.get_running_loop())
    return c


def client_of(*tps: TP) -> AIOKafkaConsumer:
    client = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    client.assign([TopicPartition(tp.topic, tp.partition) for tp in tps])
    return client


async def test_pausing_and_resuming_reach_the_kafka_client() -> None:
    client = client_of(INPUT, *CHANGELOG)
    c = consumer(client)
    c.pause_partitions(CHANGELOG)
    assert client.paused() == set()  # applied on the client's own loop, not inline
    await asyncio.sleep(0)
    assert client.paused() == {TopicPartition(tp.topic, tp.partition) for tp in CHANGELOG}
    assert c._active_partitions == {INPUT}  # Faust's own bookkeeping as before
    c.resume_partitions(CHANGELOG[:1])
    await asyncio.sleep(0)
    assert client.paused() == {TopicPartition(CHANGELOG[1].topic, CHANGELOG[1].partition)}
    assert c._active_partitions == {INPUT, CHANGELOG[0]}


async def test_a_partition_no_longer_assigned_is_skipped_the_others_still_paused() -> None:
    client = client_of(INPUT, CHANGELOG[0])  # CHANGELOG[1] was revoked meanwhile
    c = consumer(client)
    c.pause_partitions([CHANGELOG[1], CHANGELOG[0]])
    await asyncio.sleep(0)
    assert client.paused() == {TopicPartition(CHANGELOG[0].topic, CHANGELOG[0].partition)}


async def test_before_the_client_starts_only_fausts_bookkeeping_changes() -> None:
    c = consumer(None)
    c.pause_partitions(CHANGELOG)
    assert c._paused_partitions == set(CHANGELOG) and c._active_partitions == {INPUT}
