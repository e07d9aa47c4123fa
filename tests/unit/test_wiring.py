"""The worker's wiring: the typed container is complete at start-up, or the start fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams import app as app_module
from streams.agents import frequency
from streams.errors import PulseError, WiringError
from streams.runtime.container import REQUIRED_AGENTS
from streams.settings import Settings


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_token="t" * 32, **kw)  # type: ignore[arg-type]


def test_create_app_wires_every_part(tmp_path: Path) -> None:
    rt = app_module.create_app(settings(tmp_path))
    assert set(rt.agents) == set(REQUIRED_AGENTS)
    assert rt.rule_feed is not None and rt.kpis is not None
    assert len(rt.change_hooks) == 2  # KPI facts, owner-frequency hits
    assert len(rt.rule_hooks) == 1  # the timer index notices retired rules
    assert rt.shipper.alerting is rt.alerting  # one gate, built before any agent
    assert rt.shipper.change_hooks is rt.change_hooks
    assert rt.engine.org is rt.org and rt.alerting.org is rt.org  # one org directory
    assert not rt.rules_ready.is_set()  # only the rule feed sets it


def test_a_missing_agent_is_a_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = tuple(r for r in app_module.REGISTRATIONS if r is not frequency.register)
    monkeypatch.setattr(app_module, "REGISTRATIONS", without)
    with pytest.raises(WiringError, match="missing agent 'frequency'") as caught:
        app_module.create_app(settings(tmp_path))
    assert isinstance(caught.value, PulseError)


def test_an_agent_registered_twice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = app_module.create_app(settings(tmp_path))
    with pytest.raises(WiringError, match="'ingest' registered twice"):
        rt.watch("ingest", object())


def test_batch_handlers_take_the_input_the_kpi_facts_and_the_owner_hits(tmp_path: Path) -> None:
    """Every busy topic reaches its handler as one batch per fetch, never one awaited
    callback per record through Faust's conductor (which held the fetch loop up)."""
    s = settings(tmp_path)
    app = app_module.create_app(s).app
    assert set(app.batch_handlers) == {
        s.events_topic,
        s.kpi_facts_topic,
        s.frequency_topic,
        s.kpis_topic,
    }  # the KPI rules read the snapshots in batches too
    # of one fetch, the input first, then the owner hits (they become alerts), then the rest
    assert app.batch_rank == {s.events_topic: 0, s.frequency_topic: 1}
    off = app_module.create_app(settings(tmp_path / "off", batch_consumer=False)).app
    assert off.batch_handlers == {}  # the classic per-record agents then


async def test_the_consumer_asks_the_broker_to_hold_fetches_briefly(tmp_path: Path) -> None:
    """Faust's 1.5 s fetch wait held a busy input behind quiet internal topics: the
    worker's aiokafka consumer gets the setting's wait instead."""
    app = app_module.create_app(settings(tmp_path, fetch_max_wait_ms=77)).app
    thread = app.consumer._new_consumer_thread()
    client = thread._create_worker_consumer(app.transport)
    assert client._fetch_max_wait_ms == 77


async def test_records_of_partitions_faust_does_not_read_never_hold_the_next_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka fetches nothing from a broker while one of its partitions holds records
    nobody took, for up to 100 ms (``calculate_backoff``): records of a partition Faust
    does not read (a table changelog after recovery) stop holding it, whether they came
    before or after Faust stopped reading it; they stay buffered, in order, and the
    input's records keep aiokafka's rule."""
    from collections import OrderedDict
    from types import SimpleNamespace

    from aiokafka import TopicPartition
    from aiokafka.consumer.fetcher import FetchResult
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types import TP

    from streams.transport import ReleasingRecords

    app = app_module.create_app(settings(tmp_path)).app
    thread = app.consumer._new_consumer_thread()
    events, changelog, later = (TopicPartition(t, 0) for t in ("events", "changelog", "later"))

    def fetched(tp: TopicPartition) -> FetchResult:
        return FetchResult(tp, assignment=None, partition_records=None, backoff=0.1)

    client = SimpleNamespace(_fetcher=SimpleNamespace(_records=OrderedDict()))
    client._fetcher._records[later] = fetched(later)  # came while Faust still read it
    asked: list[object] = []

    async def faust_fetch(self: object, consumer: object, active: object, **kw: object) -> dict:
        asked.append(active)
        return {}

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "_fetch_records", faust_fetch)
    active = {TP("events", 0), TP("changelog", 0)}  # Faust's own tuple type
    await thread._fetch_records(client, active, timeout=0.0)
    assert asked == [active]  # Faust's own fetch, of its active partitions
    records = client._fetcher._records
    assert isinstance(records, ReleasingRecords)
    assert records[later].calculate_backoff() == 0  # released when Faust read others
    records[events] = fetched(events)
    assert records[events].calculate_backoff() > 0  # the input keeps aiokafka's rule
    active.discard(TP("changelog", 0))  # recovery is over: Faust stops reading it
    await thread._fetch_records(client, active, timeout=0.0)
    records[changelog] = fetched(changelog)
    assert records[changelog].calculate_backoff() == 0  # released as it came
    assert records[events].calculate_backoff() > 0
    assert list(records) == [later, events, changelog]  # nothing dropped, in order
    assert records.read({TP("events", 0)}) == 0  # nothing left to release


async def test_a_record_fetched_before_its_partition_was_moved_back_is_not_taken(
    tmp_path: Path,
) -> None:
    """The fetch loop takes a record only below the client's position of its partition:
    one at or past it was fetched before a seek moved the partition back (recovery seeks
    every partition to its commit) and will come again; none is taken for a partition
    the client no longer holds or whose position is being reset (a rebalance)."""
    from aiokafka import TopicPartition
    from faust.types import TP

    from streams.transport import fetched_position

    app = app_module.create_app(settings(tmp_path)).app
    client = app.consumer._new_consumer_thread()._create_worker_consumer(app.transport)
    assert fetched_position(None, TP("events", 0)) is None  # the client not started
    assert fetched_position(client, TP("events", 0)) is None  # nothing assigned yet
    events, other = TopicPartition("events", 0), TopicPartition("events", 1)
    client.assign([events])
    state = client._subscription.subscription.assignment.state_value(events)
    assert fetched_position(client, TP("events", 0)) is None  # position being reset
    state.seek(120)  # the client handed over records up to 119
    assert fetched_position(client, TP("events", 0)) == 120  # Faust's own tuple type
    state.seek(100)  # recovery: back to the commit; 100..119 come again
    assert fetched_position(client, TP("events", 0)) == 100
    assert fetched_position(client, other) is None  # not this worker's


def test_acking_a_batch_keeps_fausts_bookkeeping_as_acking_each_record(
    tmp_path: Path,
) -> None:
    """``ack_many`` takes Faust's ack lock once per batch: the acked offsets, their index,
    the count towards the next commit and the records' flags are what Faust's own ``ack``
    of each record leaves, including records acked twice and offsets before the commit."""
    from faust.types import TP
    from faust.types.tuples import Message

    topic = Settings().events_topic

    def consumer(name: str) -> Any:
        app = app_module.create_app(settings(tmp_path / name)).app
        app.topics._acking_topics.add(topic)  # as the conductor does once subscribed
        c = app.consumer
        c._committed_offset[TP(topic, 0)] = 3  # offsets below 3 were committed
        return c

    def messages() -> list[Any]:
        return [Message(topic, p, o, 0.0, 0, [], b"k", b"v", None, tp=TP(topic, p))
                for p, o in ((0, 2), (0, 3), (0, 4), (1, 0), (0, 4))]  # fmt: skip

    one_by_one, batched = consumer("each"), consumer("batch")
    each, batch = messages(), messages()
    for message in each:
        one_by_one.ack(message)
    batched.ack_many(batch)
    assert (
        dict(batched._acked)
        == dict(one_by_one._acked)
        == {
            TP(topic, 0): [3, 4],
            TP(topic, 1): [0],
        }
    )
    assert dict(batched._acked_index) == dict(one_by_one._acked_index)
    assert batched._n_acked == one_by_one._n_acked == 3
    assert [m.acked for m in batch] == [m.acked for m in each] == [True] * 5
