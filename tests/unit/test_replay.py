"""Exact replay, redelivery, out-of-order input and deterministic alert content (pure).

The property test plays the worker's delivery protocol on the starter rules: alerts are
acknowledged before the states, states before the input commit, and a crash loses whatever
was not acknowledged yet; a restart re-reads the input from the last committed offset over
the states of the changelog. Whatever the crash points, the alerts must be exactly those of
an undisturbed run, one content per ``(alert_id, sequence)``.
"""

from __future__ import annotations

import itertools
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.clock import ManualClock, when_ingested
from streams.decode import RawRecord
from streams.judge import BatchResult, Engine
from streams.judge.logic import judged_at
from streams.judge.state import decode_dict, state_of
from streams.org import OrgDirectory
from streams.rules.loader import load_paths, load_text
from streams.rules.ruleset import RuleSet
from streams.simulator import DealSimulator
from tests.unit.helpers import T0, event
from tests.unit.rulekit import judge_timers

REPO = Path(__file__).resolve().parents[2]
_loaded = load_paths([REPO / "rules"])
assert _loaded.ok, _loaded.problems
STARTER = RuleSet.build(r.compiled for r in _loaded.rules)
BACK = """
rules:
  - id: back
    type: transition
    field: stage
    change: backwards
    order: [Prospecting, Engaging, Negotiation, Won]
    message: "{subject.id} back from {evidence.old} to {evidence.new}"
"""


def _rules(text: str) -> RuleSet:
    loaded = load_text(text)
    assert loaded.ok, loaded.problems
    return RuleSet.build(r.compiled for r in loaded.rules)


def _record(offset: int, value: dict[str, Any] | bytes, partition: int = 0) -> RawRecord:
    data = value if isinstance(value, bytes) else orjson.dumps(value)
    ts = int((T0 + timedelta(seconds=offset)).timestamp() * 1000)  # the Kafka timestamp
    return RawRecord("crm.events", partition, offset, b"k", data, ts)


def _store(table: dict[bytes, bytes], result: BatchResult) -> None:
    for key, (_, blob) in result.writes.items():
        if blob is None:
            table.pop(key, None)
        else:
            table[key] = blob


def _deal_history() -> list[RawRecord]:
    """One deal changed 20 times (more than the 8 remembered event ids): stage moves back
    and forth, then it is lost without a reason."""
    stages = ["Prospecting", "Engaging", "Negotiation", "Engaging", "Negotiation"] * 4
    events = [event("D-1", "create", 0, stage="Prospecting", amount=100.0, name="Acme")]
    events += [event("D-1", "update", i + 1, stage=s) for i, s in enumerate(stages[1:])]
    events.append(event("D-1", "update", 30, stage="Won"))
    return [_record(i, e) for i, e in enumerate(events)]


def test_a_catch_up_longer_than_the_id_window_is_skipped_by_position() -> None:
    engine = Engine(_rules(BACK), clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    records = _deal_history()
    first = engine.process(records, table.get)
    _store(table, first)
    assert len(first.alerts) == 7  # Negotiation -> Engaging or Prospecting, seven times
    # a kill before the commit: every record is read again over the written state
    again = engine.process(records, table.get)
    assert again.alerts == [] and again.writes == {} and again.changes == []
    assert again.stats.replays == len(records) and again.stats.duplicates == 0
    state = decode_dict(table[b"deal:D-1"])
    assert state is not None and state["f"]["stage"] == "Won"
    assert state["q"][:2] == [0, len(records) - 1]


def test_a_source_redelivery_at_new_offsets_is_caught_by_event_id() -> None:
    engine = Engine(_rules(BACK), clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    records = _deal_history()
    _store(table, engine.process(records, table.get))
    # the source sends its last 3 events again, at new offsets
    redelivered = [_record(100 + i, r.value or b"") for i, r in enumerate(records[-3:])]
    result = engine.process(redelivered, table.get)
    assert result.stats.duplicates == 3 and result.alerts == [] and result.writes == {}


def test_an_older_change_is_not_merged_over_a_newer_state() -> None:
    engine = Engine(_rules(BACK), clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    _store(table, engine.process([
        _record(0, event("D-2", "create", 0, stage="Prospecting")),
        _record(1, event("D-2", "update", 10, stage="Negotiation")),
    ], table.get))  # fmt: skip
    # the CRM delivers a change made at minute 5 after the one made at minute 10
    late = engine.process([_record(2, event("D-2", "update", 5, stage="Engaging"))], table.get)
    assert late.stats.out_of_order == 1
    assert late.alerts == [] and late.writes == {} and late.changes == []  # no false backwards
    state = decode_dict(table[b"deal:D-2"])
    assert state is not None and state["f"]["stage"] == "Negotiation"
    # same occurred_at as the last change: applied (a source may stamp several changes alike)
    same = engine.process([_record(3, event("D-2", "update", 10, amount=5.0))], table.get)
    assert same.stats.out_of_order == 0 and len(same.writes) == 1


def test_replay_and_order_checks() -> None:
    state = state_of({"q": [1, 40, 0.0], "u": 100.0})
    empty = state_of({})
    assert state.replayed((1, 40)) and state.replayed((1, 3))
    assert not state.replayed((1, 41)) and not state.replayed((0, 3))  # other partition
    assert not empty.replayed((0, 0))
    assert state.out_of_order(99.9) and not state.out_of_order(100.0)
    assert not empty.out_of_order(0.0)


def test_a_replayed_change_renders_the_same_alert_whenever_it_runs() -> None:
    records = _deal_history()
    clock = ManualClock(T0 + timedelta(days=1))
    first = Engine(_rules(BACK), clock=clock).process(records, {}.get)
    clock.advance(timedelta(days=3))  # the replay runs days later: same bytes
    again = Engine(_rules(BACK), clock=clock).process(records, {}.get)
    assert [a.model_dump_json() for a in again.alerts] == [
        a.model_dump_json() for a in first.alerts
    ]
    # the time an alert carries is its causing record's Kafka timestamp
    assert first.alerts[0].fired_at == when_ingested(records[3].timestamp_ms, clock())
    assert when_ingested(None, clock()) == clock()


TIMER = """
rules:
  - id: idle
    type: inactivity
    applies_to: {entity: deal}
    after: PT1H
    activity_fields: [stage]
    realert: {every: PT30M}
    message: "{subject.id} idle"
"""


def test_a_timer_alert_is_judged_at_its_deadline_not_at_the_scan() -> None:
    rules = _rules(TIMER)
    engine = Engine(rules, clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    _store(table, engine.process([_record(0, event("D-3", "create", 0, stage="Proposal"))],
                                 table.get))  # fmt: skip
    key = b"deal:D-3"
    state = decode_dict(table[key])
    assert state is not None
    due = state_of(state).next_due()
    assert due is not None
    org = OrgDirectory()
    # two scans of the same state at different times (a crash before the state write)
    late = datetime.fromtimestamp(due, tz=UTC) + timedelta(minutes=7)
    a = judge_timers(rules, [key], table.get, late, org)
    b = judge_timers(rules, [key], table.get, late + timedelta(minutes=13), org)
    assert len(a.alerts) == 1
    assert [x.model_dump_json() for x in a.alerts] == [x.model_dump_json() for x in b.alerts]
    assert a.alerts[0].fired_at == datetime.fromtimestamp(due, tz=UTC)
    assert (
        judged_at(state_of(state), datetime.fromtimestamp(due - 1, tz=UTC)) < a.alerts[0].fired_at
    )


def _sim_records(seed: int, count: int, partitions: int) -> list[list[RawRecord]]:
    """Simulated events spread by key over ``partitions`` (offsets per partition)."""
    sim = DealSimulator(seed=seed, open_deals_target=6)  # few deals, many changes each
    parts: list[list[RawRecord]] = [[] for _ in range(partitions)]
    for i, (key, value) in enumerate(sim.stream(T0, timedelta(seconds=5), count)):
        p = zlib.crc32(key) % partitions
        ts = int((T0 + timedelta(seconds=5 * i)).timestamp() * 1000)
        parts[p].append(RawRecord("crm.events", p, len(parts[p]), key, value, ts))
    return parts


def _alert_map(alerts: list[Any]) -> dict[tuple[str, int], set[str]]:
    out: dict[tuple[str, int], set[str]] = {}
    for a in alerts:
        out.setdefault((a.alert_id, a.sequence), set()).add(a.model_dump_json())
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(5, 60),
    crashes=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3), st.booleans()),
                     min_size=1, max_size=6),
)  # fmt: skip
def test_crashes_anywhere_give_the_undisturbed_alerts(
    seed: int, batch: int, crashes: list[tuple[int, int, bool]]
) -> None:
    """``crashes``: (batches processed before the crash, batches behind the commit, whether
    the state writes of the last batch were lost too)."""
    parts = _sim_records(seed, 400, 2)
    clean = Engine(STARTER, clock=ManualClock(T0))
    table: dict[bytes, bytes] = {}
    expected: list[Any] = []
    for records in parts:
        for start in range(0, len(records), batch):
            result = clean.process(records[start : start + batch], table.get)
            _store(table, result)
            expected.extend(result.alerts)
    clock = ManualClock(T0 + timedelta(days=2))
    durable: dict[bytes, bytes] = {}  # the changelog
    committed = [0, 0]
    emitted: list[Any] = []
    plan = itertools.chain(crashes, itertools.repeat((10**9, 0, False)))
    while any(committed[p] < len(parts[p]) for p in range(2)):
        run_for, behind, lose_writes = next(plan)
        clock.advance(timedelta(hours=1))  # a restart, later
        engine = Engine(STARTER, clock=clock)
        memory = dict(durable)  # recovered from the changelog
        done = 0
        positions = list(committed)
        history: list[tuple[int, int]] = []  # (partition, next offset) after each batch
        while done < run_for and any(positions[p] < len(parts[p]) for p in range(2)):
            p = done % 2 if positions[done % 2] < len(parts[done % 2]) else 1 - done % 2
            chunk = parts[p][positions[p] : positions[p] + batch]
            result = engine.process(chunk, memory.get)
            _store(memory, result)
            emitted.extend(result.alerts)  # acknowledged first
            crashing = done + 1 >= run_for
            if not (crashing and lose_writes):
                _store(durable, result)  # then the states
            positions[p] += len(chunk)
            history.append((p, positions[p]))
            done += 1
        # the commit lags ``behind`` batches behind what was shipped
        # (never past a batch whose states were lost: the commit follows the state writes)
        shipped = len(history) - max(behind, 1 if lose_writes else 0)
        for p, nxt in history[: max(0, shipped)]:
            committed[p] = max(committed[p], nxt)
        if run_for >= 10**9:
            committed = [len(parts[0]), len(parts[1])]
    got, want = _alert_map(emitted), _alert_map(expected)
    assert all(len(contents) == 1 for contents in got.values()), "same id+sequence, other content"
    assert set(got) == set(want)  # nothing lost, nothing false
    assert {k: next(iter(v)) for k, v in got.items()} == {k: next(iter(v)) for k, v in want.items()}
    assert {k: decode_dict(v) for k, v in durable.items()} == {
        k: decode_dict(v) for k, v in table.items()
    }
