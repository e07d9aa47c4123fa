"""Crashes and failovers change nothing: kill -9 during a run, compared with the dry run.

Deterministic input (20,000 simulator events, fixed seed and start time) through real
workers and a real broker, with the starter rules. Oracle: the offline dry run of the same
input (``crm-pulse rules test``, :func:`streams.judge.dryrun.run_events`), which runs the
worker's own engine code. A consumer that deduplicates on ``(alert_id, sequence)`` as
documented must see exactly the oracle's alerts: none lost, none false, never two contents
for one ``(alert_id, sequence)``, and the same final status per ``alert_id``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.judge.dryrun import run_events
from streams.rules.loader import load_paths
from streams.rules.ruleset import RuleSet
from streams.simulator import DealSimulator
from tests.integration.conftest import REPO, WorkerFactory, WorkerProcess, run_sync
from tests.integration.kafka_io import produce, read_all

EVENTS = 20_000
SEED = 13
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
#: ``frequency`` rules counted per owner group the hits of every input partition in the
#: order they reach the owner's partition: with several input partitions that order (so
#: which three losses make one alert) depends on timing, in an undisturbed run too.
ACROSS_PARTITIONS = {"deals-lost-by-owner"}


def simulated() -> list[tuple[bytes, bytes]]:
    """50 open deals at a time: an active deal changes every few dozen events, so a
    catch-up of a few thousand events covers many changes of the same deal."""
    sim = DealSimulator(seed=SEED, open_deals_target=50)
    return list(sim.stream(START, timedelta(seconds=1), EVENTS))


def oracle(messages: Sequence[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    loaded = load_paths([REPO / "rules"])
    assert loaded.ok, loaded.problems
    rules = RuleSet.build(r.compiled for r in loaded.rules)
    run = run_events(rules, (value for _, value in messages))
    return [orjson.loads(a.model_dump_json()) for a in run.alerts]


def metric_sum(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_stable(
    workers: Sequence[WorkerProcess], seconds: float = 3.0, timeout: float = 120.0
) -> None:
    """Until every worker has been ready for ``seconds`` in a row (the group settled)."""
    deadline = time.monotonic() + timeout
    since = time.monotonic()
    while time.monotonic() < deadline:
        if not all(w.http_status("/ready") == 200 for w in workers):
            since = time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.2)
    pytest.fail(f"workers not ready together:\n{workers[0].log_tail()}")


def wait_for(worker: WorkerProcess, name: str, at_least: float, timeout: float = 180.0) -> float:
    deadline = time.monotonic() + timeout
    seen = 0.0
    while time.monotonic() < deadline:
        try:
            seen = metric_sum(worker.http_text("/metrics"), name)
        except OSError:
            seen = 0.0
        if seen >= at_least:
            return seen
        time.sleep(0.05)
    pytest.fail(f"{name} stayed at {seen} < {at_least}:\n{worker.log_tail()}")


async def behind(worker: WorkerProcess) -> dict[str, int]:
    """Records of the input and owner-frequency topics not yet committed by the group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    s = worker.settings
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=s.app_id,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        out: dict[str, int] = {}
        for topic in (s.events_topic, s.frequency_topic):
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                done = await consumer.committed(tp)
                out[f"{topic}[{tp.partition}]"] = ends[tp] - (done or 0)
        return out
    finally:
        await consumer.stop()


def wait_caught_up(worker: WorkerProcess, timeout: float = 240.0) -> None:
    """Until the group has committed every input and owner-hit record: every alert of the
    input has been acknowledged by then (alerts before states before commits)."""
    deadline = time.monotonic() + timeout
    lags: dict[str, int] = {}
    while time.monotonic() < deadline:
        lags = run_sync(behind(worker))
        if lags and not any(lags.values()):
            return
        time.sleep(1.0)
    pytest.fail(f"input not consumed: {lags}\n{worker.log_tail()}")


def produce_in_background(
    bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]], rate: float
) -> threading.Thread:
    """Produce ``messages`` at ``rate`` per second from a thread (a live source)."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            started = time.monotonic()
            for i, (key, value) in enumerate(messages):
                await producer.send(topic, key=key, value=value)
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0.01:
                    await asyncio.sleep(ahead)
            await producer.flush()
        finally:
            await producer.stop()

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def compare(
    got: list[dict[str, Any]], want: list[dict[str, Any]], exact: bool = True
) -> dict[str, int]:
    """Figures of a run against the oracle; ``exact=False`` leaves out the per-owner counts
    of :data:`ACROSS_PARTITIONS` from the oracle comparison (checked for consistency only)."""

    def key(a: dict[str, Any]) -> tuple[str, int]:
        return a["alert_id"], a["sequence"]

    def comparable(a: dict[str, Any]) -> bytes:  # the oracle runs at another time
        return orjson.dumps({k: v for k, v in a.items() if k not in ("fired_at", "resolved_at")},
                            option=orjson.OPT_SORT_KEYS)  # fmt: skip

    contents: dict[tuple[str, int], set[bytes]] = {}
    for a in got:
        contents.setdefault(key(a), set()).add(orjson.dumps(a, option=orjson.OPT_SORT_KEYS))
    other_content = sum(1 for c in contents.values() if len(c) > 1)
    skip = set() if exact else ACROSS_PARTITIONS
    mine = {key(a): a for a in got if a["rule_id"] not in skip}
    theirs = {key(a): a for a in want if a["rule_id"] not in skip}
    lost = set(theirs) - set(mine)
    false = set(mine) - set(theirs)
    differing = sum(
        1 for k in set(mine) & set(theirs) if comparable(mine[k]) != comparable(theirs[k])
    )

    def finals(alerts: dict[tuple[str, int], dict[str, Any]]) -> dict[str, str]:
        top: dict[str, tuple[int, str]] = {}
        for (alert_id, seq), a in alerts.items():
            if seq >= top.get(alert_id, (0, ""))[0]:
                top[alert_id] = (seq, a["status"])
        return {k: v[1] for k, v in top.items()}

    mine_final, theirs_final = finals(mine), finals(theirs)
    wrong_final = sum(1 for k, s in theirs_final.items() if mine_final.get(k) != s)
    for name, keys, where in (("lost", lost, theirs), ("false", false, mine)):
        for k in sorted(keys)[:5]:
            a = where[k]
            print(name, a["rule_id"], a["subject"]["id"], a["status"], a["sequence"],
                  a["event_ids"], a["evidence"])  # fmt: skip
    return {
        "oracle": len(theirs), "delivered": len(got), "distinct": len(contents),
        "lost": len(lost), "false": len(false), "other_content": other_content,
        "differing_from_oracle": differing, "wrong_final_status": wrong_final,
    }  # fmt: skip


def owner_alerts_consistent(
    got: list[dict[str, Any]], messages: Sequence[tuple[bytes, bytes]]
) -> None:
    """Per-owner frequency alerts: each names ``count`` distinct losses of its owner within
    a day, and no loss is counted in two alerts of one owner (never counted twice)."""
    lost: dict[str, tuple[str, float]] = {}
    for _, value in messages:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and (event.get("fields") or {}).get("stage") == "Lost":
            at = datetime.fromisoformat(event["occurred_at"]).timestamp()
            lost[event["event_id"]] = (event.get("owner_id") or "", at)
    counted: dict[str, set[str]] = {}
    for a in {(x["alert_id"], x["sequence"]): x for x in got}.values():
        if a["rule_id"] not in ACROSS_PARTITIONS:
            continue
        ids = a["event_ids"]
        assert len(set(ids)) == len(ids) == 3, a
        assert all(lost[i][0] == a["owner_id"] for i in ids), a
        times = [lost[i][1] for i in ids]
        assert max(times) - min(times) <= 86400, a
        seen = counted.setdefault(a["owner_id"], set())
        assert not seen & set(ids), f"a loss counted twice: {a}"
        seen.update(ids)


async def create_owner_topic(worker: WorkerProcess) -> None:
    """The internal owner-hit topic, before the workers start: a worker creating it itself
    can subscribe before its metadata is known and then ignore it ("Ignoring missing
    topic"), which leaves the per-owner counts unread (a start-up race of its own)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    s = worker.settings
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
    await admin.start()
    try:
        if s.frequency_topic not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(s.frequency_topic, s.topic_partitions, 1)])
    finally:
        await admin.close()


def after_the_source(
    worker: WorkerProcess, producer: threading.Thread, want: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Once the source has produced everything and the group committed it all: the alerts
    and their figures against the oracle (per-owner counts by meaning)."""
    producer.join(timeout=120)
    assert not producer.is_alive()
    wait_caught_up(worker)
    got = run_sync(read_alerts(worker))
    return got, compare(got, want, exact=False)


def as_the_oracle(
    figures: dict[str, int], got: list[dict[str, Any]], messages: Sequence[tuple[bytes, bytes]]
) -> None:
    """None lost, none false, one content per ``(alert_id, sequence)``, the oracle's
    contents and final statuses, and per-owner counts consistent with the input."""
    assert figures["oracle"] > 500
    for name in ("lost", "false", "other_content", "differing_from_oracle", "wrong_final_status"):
        assert figures[name] == 0, figures
    owner_alerts_consistent(got, messages)


async def read_alerts(worker: WorkerProcess) -> list[dict[str, Any]]:
    records = await read_all(worker.settings.bootstrap_servers, worker.settings.alerts_topic, 5.0)
    return [orjson.loads(r.value) for r in records if r.value]


def test_undisturbed_kill9_of_the_only_worker_matches_the_dry_run(
    worker_factory: WorkerFactory,
) -> None:
    """One input partition (so the per-owner counts see the oracle's order too): first
    an undisturbed pass over a fifth of the input, then kill -9 five times during the rest."""
    messages = simulated()
    want = oracle(messages)
    rng = random.Random(SEED)
    worker = worker_factory(start=False, TOPIC_PARTITIONS="1")
    run_sync(create_owner_topic(worker))
    worker.start()
    s = worker.settings
    half = EVENTS // 5
    run_sync(produce(s.bootstrap_servers, s.events_topic, messages[:half]))
    wait_caught_up(worker)
    undisturbed = compare(run_sync(read_alerts(worker)), oracle(messages[:half]))
    print("undisturbed:", undisturbed)
    assert undisturbed["lost"] == undisturbed["false"] == undisturbed["differing_from_oracle"] == 0
    run_sync(produce(s.bootstrap_servers, s.events_topic, messages[half:]))
    kills, replayed = 0, 0
    for _ in range(5):
        # applied in this process: kill it somewhere in the stream, shipping in flight
        wait_for(worker, "crm_pulse_events_total", rng.randint(1000, 2500))
        replayed += int(metric_sum(worker.http_text("/metrics"), "crm_pulse_replayed_events_total"))
        worker.kill()
        kills += 1
        worker.start()
    wait_caught_up(worker)
    got = run_sync(read_alerts(worker))
    # the per-owner counts are compared by their meaning, not to the oracle's grouping: a
    # replay re-sends the owner hits of a batch whose state write the kill interrupted, and
    # which three losses then make one alert can differ from an uninterrupted run
    figures = compare(got, want, exact=False)
    text = worker.http_text("/metrics")
    figures["kills"] = kills
    figures["replayed"] = replayed + int(metric_sum(text, "crm_pulse_replayed_events_total"))
    print("kill -9 x5:", figures)
    as_the_oracle(figures, got, messages)


def test_two_workers_kill9_one_mid_stream_and_restart_it(worker_factory: WorkerFactory) -> None:
    """Four input partitions over two workers; the source produces live while one worker is
    killed (its partitions move to the other) and restarted (they move back)."""
    messages = simulated()
    want = oracle(messages)
    first = worker_factory(start=False, TOPIC_PARTITIONS="4")
    run_sync(create_owner_topic(first))
    first.start()
    second = worker_factory(TOPIC_PARTITIONS="4")
    s = first.settings
    # the source starts once the group has settled: this test is about a kill; workers that
    # start together while the source produces are the next test's
    wait_stable([first, second])
    producer = produce_in_background(s.bootstrap_servers, s.events_topic, messages, rate=1000.0)
    wait_for(second, "crm_pulse_events_total", 2000)
    second.kill()
    wait_for(first, "crm_pulse_events_total", 8000)  # the survivor took over
    second.start()
    got, figures = after_the_source(first, producer, want)
    replays = sum(
        metric_sum(w.http_text("/metrics"), "crm_pulse_replayed_events_total")
        for w in (first, second)
    )
    figures["replayed"] = int(replays)
    print("two workers, kill -9 + restart:", figures)
    as_the_oracle(figures, got, messages)


def test_workers_starting_together_while_the_source_produces_lose_nothing(
    worker_factory: WorkerFactory,
) -> None:
    """Three workers start at once, the third a second later, while the source already
    produces: the group rebalances several times while the first records are fetched and
    table changelogs are recovered; every record is still read once its partition settles
    (the group commits to the end of the input) and the alerts are the oracle's."""
    messages = simulated()
    want = oracle(messages)
    first, second, third = (worker_factory(start=False, TOPIC_PARTITIONS="4") for _ in range(3))
    run_sync(create_owner_topic(first))
    s = first.settings
    producer = produce_in_background(s.bootstrap_servers, s.events_topic, messages, rate=2000.0)
    first.start_process()
    second.start_process()
    time.sleep(1.0)
    third.start_process()
    got, figures = after_the_source(first, producer, want)
    print("three workers starting while the source produces:", figures)
    as_the_oracle(figures, got, messages)
