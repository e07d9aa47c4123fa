"""KPI stages over hostile values and dates: nothing raises, the watermark stays sane,
publication stays bounded (property-based with hypothesis, plus the cases of issue 12)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.clock import ManualClock
from streams.contracts.events import ChangeEvent, EntityKind, Op
from streams.contracts.kpis import KpiSnapshot
from streams.decode import DecodeLimits, RawRecord
from streams.judge import Engine
from streams.kpis.catalog import default_catalog
from streams.kpis.compute import Context
from streams.kpis.directory import parse_directory
from streams.kpis.facts import (
    OTHER_STAGE,
    FactRules,
    batch_watermark,
    extract,
    facts_by_scope,
    parse_cents,
    to_day,
)
from streams.kpis.publish import windows_to_publish
from streams.kpis.runtime import KpiRuntime
from streams.kpis.skips import Skips, ThrottledLog
from streams.kpis.store import MAX_INT, KpiStore
from streams.kpis.windows import MAX_DAY, TUMBLING, day_of, dt_of, tumbling
from streams.rules.change import Change
from streams.settings import DEFAULT_STAGE_ORDER

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DAY = 86400.0
CATALOG = default_catalog()
RULES = FactRules(CATALOG.params)
DIRECTORY = parse_directory("owner,team,region\nann,mia,West\nbob,lou,East\n")


def examples(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- strategies -----------------------------------------------------------------------

OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=-12)), timezone(timedelta(hours=14)), timezone.min]
)
WILD_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS),
    st.datetimes(
        min_value=datetime(2026, 10, 1), max_value=datetime(2026, 11, 4), timezones=OFFSETS
    ),
    st.sampled_from(
        [
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-12))),
            datetime(2099, 1, 1, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-14))),
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        ]
    ),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e18, 1e30, -1e308, 10**21, 2**63, -5, 0, 12.5, 10**400]),
)
DATE_TEXTS = st.one_of(
    WILD_TIMES.map(lambda d: d.isoformat()),
    WILD_TIMES.map(lambda d: d.date().isoformat()),
    st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "1772442840", "Z", "  "]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), NUMBERS, st.text(max_size=40), DATE_TEXTS, st.text(min_size=300)
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    st.integers(min_value=1, max_value=400).map(_deep),
)
STAGES = st.one_of(st.sampled_from([*DEFAULT_STAGE_ORDER, "Lost", "Won", "Negotation"]), VALUES)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "stage": STAGES,
        "amount": VALUES,
        "engage_date": VALUES,
        "account": VALUES,
        "product": VALUES,
        "status": st.one_of(st.just("New"), VALUES),
    },
)
OWNERS = st.one_of(
    st.none(), st.sampled_from(["ann", "bob", "zed", ""]), VALUES, st.text(min_size=250)
)
EPOCHS = st.one_of(st.none(), NUMBERS, WILD_TIMES.map(lambda d: d.timestamp()))


@st.composite
def changes(draw: st.DrawFn, offset: int = 0) -> Change:
    """A change as the engine hands it to the KPI hooks, with hostile values anywhere
    (built without validation: the KPI side must hold even if the contract lets it in)."""
    entity = draw(st.sampled_from([EntityKind.DEAL, EntityKind.LEAD, EntityKind.ACTIVITY]))
    before = draw(st.one_of(st.none(), FIELDS))
    event = ChangeEvent.model_construct(
        event_id=str(uuid.uuid4()), source="fuzz", entity=entity, entity_id="X1",
        op=Op.CREATE if before is None else Op.UPDATE, occurred_at=draw(WILD_TIMES),
        actor=None, owner_id=None, fields={}, changed=None,
    )  # fmt: skip
    return Change(
        event=event, before=before, after=draw(FIELDS), changed=frozenset(), now=NOW,
        first_seen=draw(EPOCHS), last_seen=draw(EPOCHS), owner_before=draw(OWNERS),  # type: ignore[arg-type]
        owner=draw(OWNERS), position=(0, draw(st.integers(0, 10**6)) + offset),  # type: ignore[arg-type]
    )  # fmt: skip


def runtime(clock: ManualClock | None = None, lateness: int = 7) -> KpiRuntime:
    return KpiRuntime(
        store=KpiStore({}), catalog=CATALOG, context=Context(DEFAULT_STAGE_ORDER),
        allowed_lateness_days=lateness, clock=clock or ManualClock(NOW),
    )  # fmt: skip


def check_published(rt: KpiRuntime) -> None:
    """Everything the views and the topic would serve is valid JSON of the contract."""
    for body in rt.published.values():
        KpiSnapshot.model_validate(body)
    orjson.dumps(rt.status())
    orjson.dumps(rt.query({}))
    if rt.watermark is not None:
        assert rt.watermark <= rt.latest_allowed()


# --- properties -----------------------------------------------------------------------

EXTRACT_EXAMPLES = 3000


@examples(EXTRACT_EXAMPLES)
@given(change=changes())
def test_fact_extraction_is_total_over_hostile_changes(change: Change) -> None:
    skips = Skips()
    last_day = day_of(NOW.timestamp() + DAY)
    # extract itself, not facts_by_scope (which would catch what this test must see)
    by_scope = {s: [f] for s, f in extract(change, RULES, DIRECTORY, last_day, skips).items()}
    for scope, facts in by_scope.items():
        assert len(scope.encode()) < 300
        orjson.dumps(facts)  # the facts message encodes (no 64-bit overflow, no NaN)
        for _, day, flows, deltas in facts:
            assert 0 <= day <= last_day
            assert all(0 <= int(d) <= MAX_DAY for d in deltas)
            for item in flows:
                if item[0] == "w" and item[1] is not None:
                    assert 0 <= item[1] <= 10**14
                if item[0] == "t":
                    assert all(s in (*DEFAULT_STAGE_ORDER, "Won", "Lost", OTHER_STAGE)
                               for s in item[1:])  # fmt: skip
    occurred = change.event.occurred_at.timestamp()
    if by_scope:
        assert 0 <= occurred < (last_day + 1) * DAY
    if not 0 <= occurred < (last_day + 1) * DAY and change.event.entity != EntityKind.LEAD:
        assert skips.counts[("extract", "out_of_range")] == 1


RUNTIME_EXAMPLES = 400


@examples(RUNTIME_EXAMPLES)
@given(batches=st.lists(st.lists(changes(), max_size=6), min_size=1, max_size=4))
def test_runtime_over_hostile_batches_never_raises_and_serves_valid_snapshots(
    batches: list[list[Change]],
) -> None:
    clock = ManualClock(NOW)
    rt = runtime(clock)
    for i, batch in enumerate(batches):
        batch = [
            Change(**{**{s: getattr(c, s) for s in Change.__slots__ if not s.startswith("_")},
                      "position": (0, 1000 * i + j)})
            for j, c in enumerate(batch)
        ]  # fmt: skip
        by_scope = facts_by_scope(batch, RULES, DIRECTORY, rt.last_day(), rt.skips)
        assert not rt.skips.counts[("extract", "processing_error")]
        assert not rt.skips.counts[("apply", "invalid_fact")]
        for scope, facts in by_scope.items():
            rt.apply(scope, orjson.loads(orjson.dumps(facts)))  # as sent over Kafka
        wm = batch_watermark(batch, rt.latest_allowed())
        if wm is not None:
            rt.advance(wm)
        rt.collect()
        clock.advance(timedelta(hours=7))
    check_published(rt)
    assert len(rt.published) < 60 * len(CATALOG.kpis) * 10  # bounded, whatever the dates
    assert not rt.skips.counts[("publish", "processing_error")]


FACT_ITEMS = st.one_of(
    st.just(["n"]), st.just(["l"]),
    st.tuples(st.just("w"), st.one_of(st.none(), NUMBERS), st.one_of(st.none(), NUMBERS)).map(list),
    st.tuples(st.just("t"), VALUES, VALUES).map(list),
    st.tuples(st.just("a"), VALUES).map(list),
    st.tuples(st.just("r"), VALUES).map(list),
    VALUES,
)  # fmt: skip
DAYS = st.one_of(st.integers(-(10**9), 10**9), st.integers(20000, 20800), NUMBERS, VALUES)
FACTS = st.one_of(
    st.tuples(
        st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 100)).map(list), VALUES),
        DAYS,
        st.lists(FACT_ITEMS, max_size=4),
        st.one_of(
            st.dictionaries(
                st.one_of(DAYS.map(str), st.text(max_size=4)),
                st.one_of(st.dictionaries(st.text(max_size=6), NUMBERS, max_size=3), VALUES),
                max_size=3,
            ),
            VALUES,
        ),
    ).map(list),
    VALUES,
)
STORE_EXAMPLES = 2000


@examples(STORE_EXAMPLES)
@given(events=st.lists(FACTS, max_size=8), late_before=st.integers(-(10**9), 30000))
def test_store_apply_is_total_and_every_fact_is_accounted_for(
    events: list[Any], late_before: int
) -> None:
    store = KpiStore({})
    skips = Skips()
    last_day = day_of(NOW.timestamp() + DAY)
    result = store.apply("global:all", events, late_before, last_day, skips)
    invalid = skips.counts[("apply", "invalid_fact")]
    assert result.applied + result.duplicates + result.late + result.refused + invalid == len(
        events
    )
    data = store.load("global:all")
    for day in data.days:
        assert 0 <= day <= MAX_DAY
    for raw in store.data.values():
        orjson.loads(raw)
    state = data.state_at(last_day)
    assert all(abs(v) <= MAX_INT for v in state.values())


WINDOW_EXAMPLES = 2000


@examples(WINDOW_EXAMPLES)
@given(
    first=st.integers(0, MAX_DAY),
    dirty=st.integers(-(10**7), 10**7),
    watermark=st.integers(0, MAX_DAY),
    recent=st.integers(0, 60),
    months=st.integers(1, 48),
)
def test_windows_to_publish_are_bounded_and_have_dates(
    first: int, dirty: int, watermark: int, recent: int, months: int
) -> None:
    kinds = CATALOG.windows
    windows = windows_to_publish(kinds, first, dirty, watermark, recent, months)
    assert len(windows) <= months + recent // 7 + 2 + recent + 2 + 3
    for w in windows:
        assert w.start < w.end
        dt_of(w.start).isoformat(), dt_of(w.end).isoformat()
        if w.kind in TUMBLING:
            assert tumbling(w.kind, w.start) == w


WATERMARK_EXAMPLES = 1000


@examples(WATERMARK_EXAMPLES)
@given(times=st.lists(st.one_of(NUMBERS, VALUES), max_size=10))
def test_watermark_never_passes_the_clock_plus_the_skew(times: list[Any]) -> None:
    rt = runtime()
    for t in times:
        rt.advance(t)
        if rt.watermark is not None:
            assert rt.watermark <= NOW.timestamp() + DAY
    orjson.dumps(rt.status())


# --- the cases of issue 12 --------------------------------------------------------------


class Worker:
    """Engine -> facts -> KPI runtime as the worker wires them (wall clock = ``clock``)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.clock = ManualClock(now)
        # the input contract's time window is opened wide: these tests exercise the KPI
        # side's own defence (a stored state or a wider contract can still reach it)
        wide = DecodeLimits(
            max_event_time_skew_s=1e12, min_event_time=datetime(1, 1, 2, tzinfo=UTC)
        )
        self.engine = Engine(clock=self.clock, limits=wide)
        self.refused = 0  # refused upstream by the input contract (out_of_range)
        self.states: dict[bytes, bytes] = {}
        self.runtime = runtime(self.clock)
        self.offset = 0

    def send(self, *events: dict[str, Any]) -> None:
        records = []
        for event in events:
            records.append(RawRecord("t", 0, self.offset, b"k", orjson.dumps(event)))
            self.offset += 1
        result = self.engine.process(records, self.states.get)
        self.refused += sum(1 for _, dead in result.dead if dead.reason == "out_of_range")
        for key, (_, blob) in result.writes.items():
            self.states[key] = blob
        rt = self.runtime
        by_scope = facts_by_scope(result.changes, RULES, DIRECTORY, rt.last_day(), rt.skips)
        for scope, facts in by_scope.items():
            rt.apply(scope, facts)
        wm = batch_watermark(result.changes, rt.latest_allowed())
        if wm is not None:
            rt.advance(wm)
        rt.collect()

    def value(self, kpi: str, window: str = "all") -> Any:
        found = self.runtime.query({"kpi": kpi, "scope_kind": "global", "window": window})
        return found[-1]["value"] if found else None


def deal(deal_id: str, at: datetime | str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "source": "test", "entity": "deal",
        "entity_id": deal_id, "op": "create",
        "occurred_at": at if isinstance(at, str) else at.isoformat(), "owner_id": "ann",
        "fields": {"stage": "Prospecting", "amount": 100, **fields},
    }  # fmt: skip


def test_year_9999_and_2099_events_neither_move_the_watermark_nor_make_later_ones_late() -> None:
    w = Worker()
    w.send(deal("D0", NOW - timedelta(hours=2)))
    w.send(
        deal("W1", "9999-12-31T23:59:59+00:00"),
        deal("W2", "9999-12-31T23:59:59-12:00"),
        deal("W3", "2099-01-01T00:00:00+00:00"),
    )
    w.send(deal("D1", NOW - timedelta(hours=1)), deal("D2", NOW))
    rt = w.runtime
    assert rt.watermark == NOW.timestamp()
    assert rt.late == 0
    assert w.value("new_deals") == 3.0  # D0, D1, D2: the wild ones are not counted
    assert w.value("open_pipeline_value") == 300.0
    # refused either by the input contract or, behind it, by the KPI extraction: never both
    assert w.refused + rt.skips.counts[("extract", "out_of_range")] == 3
    assert rt.status()["watermark"] == NOW.isoformat()
    check_published(rt)


def test_a_record_dated_2426_publishes_a_bounded_number_of_snapshots() -> None:
    w = Worker()
    for i in range(20):
        w.send(deal(f"D{i}", NOW - timedelta(days=i)))
    before = len(w.runtime.published)
    rt = w.runtime
    # even if a facts message carried a far-future time, the watermark is clamped
    rt.advance(datetime(2426, 3, 2, tzinfo=UTC).timestamp())
    assert rt.watermark == NOW.timestamp() + DAY
    w.send(deal("D99", NOW))
    assert len(rt.published) < before + 40 * len(CATALOG.kpis)  # was 1.5 million
    check_published(rt)


def test_a_far_past_first_event_keeps_publication_bounded() -> None:
    w = Worker()
    w.send(deal("P1", "1970-01-02T00:00:00+00:00"))  # no watermark yet: not late
    w.send(deal("D1", NOW))
    months = {b["window"]["start"] for b in w.runtime.published.values()
              if b["window"]["kind"] == "month"}  # fmt: skip
    assert len(months) <= 36
    assert w.value("new_deals") == 2.0  # counted in "all"
    check_published(w.runtime)


def test_amounts_out_of_range_count_as_missing_and_are_noted() -> None:
    for value in (1e18, 1e30, -1e308, 10**21, -5, "abc", [1], float("nan"), "1e400"):
        assert parse_cents(value) == (None, "unusable_amount"), value
    assert parse_cents(None) == (None, None)
    assert parse_cents(1e12) == (10**14, None)
    assert parse_cents("12.345") == (1234, None)
    w = Worker()
    w.send(deal("A1", NOW, amount=1e30), deal("A2", NOW, amount=-1e308), deal("A3", NOW))
    assert w.value("open_pipeline_value") == 100.0
    snap = w.runtime.query({"kpi": "open_pipeline_value", "scope_kind": "global",
                            "window": "all"})[0]  # fmt: skip
    seen = 3 - w.refused  # the input contract refuses 1e30 and -1e308 before the KPIs
    assert snap["trust"]["reasons"][0]["detail"] == f"1/{seen} open deals with an amount"
    assert w.runtime.skips.counts[("extract", "unusable_amount")] == 2 - w.refused


def test_dates_out_of_range_or_not_dates_give_no_day() -> None:
    for value in ("9999-12-31", "0001-01-01", 1e308, -1e308, float("nan"), float("inf"),
                  "2026-02-30", "x" * 100, [2026], "2026-03-02T10:00:00"):  # fmt: skip
        assert to_day(value) is None, value
    assert to_day("2026-03-02") == day_of(datetime(2026, 3, 2, tzinfo=UTC).timestamp())


def test_stages_outside_the_pipeline_share_one_dimension() -> None:
    w = Worker()
    events = []
    for i in range(30):
        events.append(deal(f"S{i}", NOW - timedelta(hours=1), stage=f"junk-{i}"))
    w.send(*events)
    w.send(*[{**e, "event_id": str(uuid.uuid4()), "op": "update", "occurred_at": NOW.isoformat(),
              "fields": {"stage": "Proposal"}} for e in events])  # fmt: skip
    dims = {b["dimensions"].get("from_stage") for b in w.runtime.published.values()
            if b["kpi"] == "stage_conversion"}  # fmt: skip
    assert dims == {OTHER_STAGE}


def test_a_stored_far_future_watermark_is_clamped_on_recovery_and_views_answer() -> None:
    store = KpiStore({})
    store.data[b"global:all|meta"] = orjson.dumps({"days": [2932896], "last": 2932896, "hw": {}})
    store.data[b"global:all|2932896"] = orjson.dumps({"d": {"deals": 1}, "n": 1})
    rt = KpiRuntime(store=store, catalog=CATALOG, context=Context(DEFAULT_STAGE_ORDER),
                    clock=ManualClock(NOW))  # fmt: skip
    rt.recover_watermark()
    assert rt.watermark is None  # that day is beyond the calendar the KPIs count
    rt.watermark = 253402343999.0  # 9999-12-31T23:59:59-12:00, as a running worker had it
    assert rt.status()["watermark"].startswith("9999-")
    rt.dirty["global:all"] = 0
    rt.collect()  # the round clamps it to the clock plus the skew
    assert rt.watermark == NOW.timestamp() + DAY
    check_published(rt)


def test_a_scope_that_fails_is_skipped_for_the_round_and_counted() -> None:
    w = Worker()
    w.send(deal("D1", NOW))
    rt = w.runtime
    rt.store.data[b"owner:ann|meta"] = b"{not json"  # unreadable meta: the scope starts anew
    w.send(deal("D2", NOW))
    assert w.value("new_deals") == 2.0

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    rt.dirty = {"global:all": day_of(NOW.timestamp()), "owner:ann": day_of(NOW.timestamp())}
    rt._scope_snapshots = broken  # type: ignore[method-assign]
    assert rt.collect() == []
    assert rt.skips.counts[("publish", "processing_error")] == 2


def test_skips_are_logged_at_most_once_per_interval(caplog: Any) -> None:
    now = [0.0]
    log = ThrottledLog(logging.getLogger("test.kpi"), 10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        log.add("extract", "out_of_range", 3, "9999-12-31T23:59:59+00:00")
        assert log.flush()
        log.add("extract", "out_of_range", 2, "")
        now[0] = 5.0
        assert not log.flush()
        now[0] = 10.0
        assert log.flush()
    assert len(caplog.records) == 2
    assert "extract/out_of_range: 2" in caplog.records[1].getMessage()
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]  # dirty data
    log.add("extract", "processing_error", 1, "ValueError")
    now[0] = 20.0
    with caplog.at_level(logging.INFO):
        assert log.flush()
    assert caplog.records[-1].levelno == logging.WARNING  # a stage failed on a value
