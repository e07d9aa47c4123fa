"""The KPI path gives exactly the snapshots it gave before its speed work: two streams of
50,000 simulator events (``tests/unit/kpi_stream.py``) against the digests recorded on
the code before the change (every publication round, every scope's final snapshots, the
counters and the skips)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.agents.kpi_facts import encoded_by_scope, facts_records, read_facts
from streams.kpis.catalog import Catalog, load_catalog
from streams.kpis.compute import COMPUTERS, READS, Context, Flow
from streams.kpis.facts import MAX_AMOUNT, MAX_TEXT, is_blank, parse_cents, weighted_cents
from streams.kpis.needs import ALL_FACTS, COMPONENTS, FactNeeds
from streams.produce import key_partitioner
from streams.settings import DEFAULT_STAGE_ORDER
from tests.unit.kpi_stream import SPECS, load_reference, run_stream


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return load_reference()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_same_snapshots_as_recorded(spec: Any, reference: dict[str, Any]) -> None:
    expected = reference[spec.name]
    got = run_stream(spec)
    assert got["counters"] == expected["counters"]
    assert got["skips"] == expected["skips"]
    assert got["published"] == expected["published"]
    assert len(got["rounds"]) == len(expected["rounds"])
    for number, (mine, theirs) in enumerate(zip(got["rounds"], expected["rounds"], strict=True)):
        assert mine == theirs, f"publication round {number} differs"
    differing = sorted(s for s in expected["final"] if got["final"].get(s) != expected["final"][s])
    assert not differing and got["final"].keys() == expected["final"].keys(), differing[:10]


def test_the_reference_exercises_what_it_should(reference: dict[str, Any]) -> None:
    """The recorded streams are not trivial: many rounds and snapshots, late events,
    replayed facts, refused facts."""
    span = reference["span"]["counters"]
    assert span["late"] > 0 and span["duplicates"] > 0
    assert span["events_applied"] > 100_000  # facts per scope: owner, team, region, global
    assert sum(r[0] for r in reference["bench"]["rounds"]) > 10_000
    assert len(reference["span"]["rounds"]) >= 40


# The amount arithmetic has a fast path (floats with at most two decimals, integers, an
# exact fraction per probability); the plain Decimal arithmetic it replaces is the
# reference, kept here.


def reference_cents(value: Any) -> tuple[int | None, str | None]:
    if is_blank(value):
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None, "unusable_amount"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return None, "unusable_amount"
    if isinstance(value, int) and not -(10**20) < value < 10**20:
        return None, "unusable_amount"
    try:
        dec = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None, "unusable_amount"
    if not dec.is_finite() or not 0 <= dec <= MAX_AMOUNT:
        return None, "unusable_amount"
    return int((dec * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), None


def reference_weighted(cents: int, probability: float) -> int:
    exact = Decimal(cents) * Decimal(str(probability))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


AMOUNT_EXAMPLES = 3000
AMOUNTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10.0, 2e12),
    st.integers(-(10**13), 10**13).map(lambda c: c / 100),
    st.integers(-(10**14), 10**14),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
)


@settings(max_examples=AMOUNT_EXAMPLES, deadline=None)
@given(value=AMOUNTS)
def test_cents_are_those_of_decimal_arithmetic(value: Any) -> None:
    assert parse_cents(value) == reference_cents(value)


@settings(max_examples=AMOUNT_EXAMPLES, deadline=None)
@given(
    cents=st.integers(0, 10**14),
    probability=st.one_of(
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.9, 1.0, 1 / 3, 0.125, 2.5e-7]),
        st.floats(-2.0, 2.0),
        st.integers(0, 10**6).map(lambda n: n / 10**6),
    ),
)
def test_weighted_cents_are_those_of_decimal_arithmetic(cents: int, probability: float) -> None:
    assert weighted_cents(cents, probability) == reference_weighted(cents, probability)


# A catalog of some KPIs extracts only the facts they read (``FactRules.of_catalog``): its
# snapshots must be exactly those it gets from every fact, publication round by round
# (values, trust, freshness: an event that only moves what the catalog does not read still
# counts as the scope's latest input), with the same counters and skips.

CATALOG = load_catalog(None)
ALL_IDS = CATALOG.ids
RESTRICTED_EVENTS = 10_000
RESTRICTED_EXAMPLES = 8


def _only(ids: tuple[str, ...]) -> Catalog:
    return CATALOG.model_copy(update={"kpis": tuple(k for k in CATALOG.kpis if k.id in ids)})


def _same_outputs(spec: Any, ids: tuple[str, ...]) -> tuple[float, float]:
    """Runs ``spec`` with the catalog of ``ids`` from every fact and from its own facts,
    asserts identical outputs, returns the bytes of facts shipped by each."""
    catalog = _only(ids)
    full: dict[str, float] = {}
    mine: dict[str, float] = {}
    expected = run_stream(spec, full, catalog=catalog, restrict=False, events=RESTRICTED_EVENTS)
    got = run_stream(spec, mine, catalog=catalog, restrict=True, events=RESTRICTED_EVENTS)
    assert got["counters"] == expected["counters"]
    # a value no KPI of the catalog reads is not parsed, so its problems are not noted:
    # amounts of deals unless a state KPI reads them, cycle starts unless the median does
    needs = FactNeeds.of(ids)
    unread = {("extract", "unusable_amount")} if not needs.amounts else set()
    if not needs.won_cycle:
        unread.add(("extract", "unusable_date"))
    theirs = {(s, r): n for s, r, n in expected["skips"]}
    mine_ = {(s, r): n for s, r, n in got["skips"]}
    for key in theirs.keys() | mine_.keys():
        if key in unread:
            assert mine_.get(key, 0) <= theirs.get(key, 0), key
        else:
            assert mine_.get(key) == theirs.get(key), key
    assert got["published"] == expected["published"] > 0
    assert got["rounds"] == expected["rounds"]
    assert got["final"] == expected["final"]
    return full["wire_bytes"], mine["wire_bytes"]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_parity_catalog_from_its_own_facts_gives_the_same_snapshots(spec: Any) -> None:
    full, mine = _same_outputs(spec, ("deals_won",))
    assert mine < full * 0.8  # and it does ship less


@settings(max_examples=RESTRICTED_EXAMPLES, deadline=None)
@given(ids=st.sets(st.sampled_from(ALL_IDS), min_size=1, max_size=4))
def test_any_restricted_catalog_gives_the_same_snapshots(ids: set[str]) -> None:
    span = next(s for s in SPECS if s.name == "span")  # late, replayed, shuffled, org
    _same_outputs(span, tuple(sorted(ids)))


def test_the_full_catalog_reads_every_fact() -> None:
    assert FactNeeds.of(ALL_IDS) == ALL_FACTS
    assert set(READS) == set(COMPUTERS)
    parity = FactNeeds.of(("deals_won",))
    assert parity.kinds == {"w"} and parity.slots == ()
    assert not parity.won_cents and not parity.won_cycle


# Each KPI's declared reads are complete: whatever else a window's facts hold, its
# computation gives the same values.

FLOW_FIELDS = {
    "new": st.integers(0, 50),
    "won": st.integers(0, 50),
    "won_cents": st.integers(0, 10**9),
    "won_with_amount": st.integers(0, 50),
    "cycles": st.lists(st.integers(0, 400), max_size=6),
    "lost": st.integers(0, 50),
    "transitions": st.dictionaries(
        st.sampled_from(["Prospecting>Proposal", "Proposal>Won", "Negotiation>Lost", "x>y"]),
        st.integers(1, 9),
        max_size=3,
    ),
    "activities": st.integers(0, 50),
    "activity_owners": st.dictionaries(st.sampled_from("abcd"), st.integers(1, 9), max_size=3),
    "responses": st.lists(st.floats(0, 1e6), max_size=6),
}
STATE = st.dictionaries(st.sampled_from(COMPONENTS), st.integers(-5, 10**9), max_size=7)
FLOWS = st.fixed_dictionaries(FLOW_FIELDS)


@settings(max_examples=AMOUNT_EXAMPLES, deadline=None)
@given(kpi=st.sampled_from(ALL_IDS), a=FLOWS, b=FLOWS, sa=STATE, sb=STATE)
def test_a_kpi_reads_nothing_but_what_it_declares(
    kpi: str, a: dict[str, Any], b: dict[str, Any], sa: dict[str, int], sb: dict[str, int]
) -> None:
    reads = READS[kpi]
    mixed = {k: (a[k] if k in reads.flow else b[k]) for k in FLOW_FIELDS}
    state = {k: v for k, v in sa.items() if k in reads.state}
    state |= {k: v for k, v in sb.items() if k not in reads.state}
    context = Context(DEFAULT_STAGE_ORDER)
    computer = COMPUTERS[kpi]
    assert computer(Flow(**mixed), state, context) == computer(Flow(**a), sa, context)


# The worker joins each facts message from the facts' own JSON (encoded once, by the
# engine's check); the reference encodes each message whole. Both give the same bytes.

FACT = st.builds(
    lambda p, day, n, text: [[0, p], day, [["t", text, "Won"]] * n, {str(day): {"deals": n}}],
    st.integers(0, 10**6),
    st.integers(0, 30_000),
    st.integers(0, 3),
    st.text(max_size=40),
)


def whole_messages(
    by_scope: dict[str, list[Any]],
    partition_of: Callable[[bytes], int],
    wm: float,
    per_message: int,
    max_bytes: int,
) -> list[tuple[int, None, bytes]]:
    """The reference: per partition, each message encoded whole by orjson, split where the
    facts' sizes say (at most ``per_message`` facts, about ``max_bytes``; a scope's name
    counts with its facts)."""
    out: list[tuple[int, None, bytes]] = []
    by_partition: dict[int, list[str]] = {}
    for scope in by_scope:
        by_partition.setdefault(partition_of(scope.encode()), []).append(scope)
    for partition, scopes in by_partition.items():
        message: dict[str, list[Any]] = {}
        count = size = 0
        for scope in scopes:
            for fact in by_scope[scope]:
                n = len(orjson.dumps(fact))
                if count and (count >= per_message or size + n > max_bytes):
                    out.append((partition, None, orjson.dumps({"wm": wm, "sc": message})))
                    message, count, size = {}, 0, 0
                message.setdefault(scope, []).append(fact)
                count += 1
                size += n + 1
            size += len(orjson.dumps(scope)) + 3
        out.append((partition, None, orjson.dumps({"wm": wm, "sc": message})))
    return out


SCOPES = ["global:all", "owner:ann", "team:é", "region:emea", "owner:bob"]


@settings(max_examples=300, deadline=None)
@given(
    by_scope=st.dictionaries(st.sampled_from(SCOPES), st.lists(FACT, min_size=1, max_size=40),
                             min_size=1),
    partitions=st.integers(1, 4),
    per_message=st.integers(1, 12),
    max_bytes=st.integers(50, 3000),
    wm=st.one_of(st.floats(-1e12, 1e12), st.just(1.5e9), st.just(0.0)),
)  # fmt: skip
def test_facts_messages_joined_from_encoded_facts_are_the_whole_messages(
    by_scope: dict[str, list[Any]], partitions: int, per_message: int, max_bytes: int, wm: float
) -> None:
    partition_of = key_partitioner(partitions)
    encoded = encoded_by_scope(by_scope)
    joined = list(facts_records(encoded, partition_of, wm, per_message, max_bytes))
    assert joined == whole_messages(by_scope, partition_of, wm, per_message, max_bytes)
    got: dict[str, list[Any]] = {}
    for partition, key, value in joined:
        scopes, read_wm = read_facts(key, value)
        assert read_wm == wm and 1 <= sum(len(facts) for _, facts in scopes) <= per_message
        assert len({scope for scope, _ in scopes}) == len(scopes)  # a scope once a message
        for scope, facts in scopes:  # on the partition of its name, as the table's key
            assert facts and partition == partition_of(scope.encode())
            got.setdefault(scope, []).extend(facts)
        one_fact = sum(len(facts) for _, facts in scopes) == 1
        assert len(value) <= max_bytes + 40 + 20 * len(scopes) or one_fact
    assert got == by_scope  # every fact of every scope, in order, once
    assert len({p for p, *_ in joined}) == len({partition_of(s.encode()) for s in by_scope})


def test_facts_messages_of_the_earlier_layout_are_still_read() -> None:
    # one message per scope, keyed by it: what a topic written by an older worker holds
    old = orjson.dumps({"wm": 12.5, "ev": [[[0, 1], 3, [], {}]]})
    assert read_facts(b"owner:ann", old) == ([("owner:ann", [[[0, 1], 3, [], {}]])], 12.5)
    for key, value in (
        (None, old),  # one scope, but no key to name it
        (None, orjson.dumps({"wm": 1.0, "sc": [["owner:ann", []]]})),  # scopes not an object
        (b"x", orjson.dumps([1.0])),
        (b"x", b"not json"),
    ):
        with pytest.raises((TypeError, ValueError, KeyError)):
            read_facts(key, value)
