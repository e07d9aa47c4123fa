"""The KPI facts on their way out of the ingest path: built for each accepted change inside
the engine's per-record isolation (:func:`facts_check`), grouped by scope for each queued
result (:meth:`FactsHook.derive`) and sent as ``kpi-facts`` messages by the shipper's write
stage, for every shipment written together (:meth:`FactsHook.send`).

The ``kpi-facts`` wire format (internal, between the workers' agents) is owned here, both
ways: :func:`facts_records` writes it, :func:`read_facts` reads it. A message holds the facts
of every scope of one partition of the topic (the partition the producer's partitioner
picks for the scope's name, so the ``kpi-buckets`` table stays co-partitioned with it)::

    {"wm": <watermark, epoch s>, "sc": {"<scope>": [<fact>, ...], ...}}

without a key. Messages of the earlier layout, one per scope, keyed by the scope and
``{"wm": ..., "ev": [<fact>, ...]}``, are still read (a topic written by an older worker).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from streams.jsonbytes import dumps
from streams.kpis.facts import FactRules, batch_watermark, extract
from streams.kpis.runtime import KpiRuntime
from streams.kpis.skips import Skips
from streams.kpis.store import ApplyResult
from streams.org import OrgDirectory
from streams.produce import partitioner, send_batched
from streams.rules.change import Change

#: Facts per ``kpi-facts`` message. A scope that every change feeds (``global:all``) gets
#: one fact per event of the shipment; the message must stay far below the broker's size
#: limit (1 MiB by default) whatever the batch size: about 150 bytes a fact.
FACTS_PER_MESSAGE = 1000
#: Bytes of facts per message at most (a message also ends when it would pass this).
FACTS_MESSAGE_BYTES = 256 * 1024
#: Encoded facts of one change at most: a change over it (a 900,000-character stage, say)
#: is dead-lettered by the engine's ``kpi_facts`` check, so every fact fits a message.
FACTS_PER_CHANGE_BYTES = 64 * 1024


#: The stage name of the engine's KPI facts check (in dead letters, and the key under which
#: the engine keeps what the check returned on the change: ``Change.derived``).
FACTS_STAGE = "kpi_facts"


class CheckedFacts(NamedTuple):
    """A change's facts as :func:`check_facts` built them, kept on the change: encoded."""

    #: scope -> the fact's JSON (the scopes of one owner share one encoding)
    facts: dict[str, bytes]


def check_facts(
    change: Change, rules: FactRules, directory: Any, last_day: int, skips: Skips
) -> CheckedFacts:
    """The facts of ``change``, encoded; raises when they cannot be built, encoded or
    shipped whole. The engine keeps them on the change for :func:`checked_facts_by_scope`.

    Encoded here, once: the fact objects die with the check instead of waiting for the
    shipment (the collector no longer scans them) and the messages are joined from these
    bytes (:func:`facts_records`), not encoded a second time."""
    encoded = encode_facts(extract(change, rules, directory, last_day, skips))
    size = max(2, 1 + sum(len(scope.encode()) + 4 + len(fact) for scope, fact in encoded.items()))
    if size > FACTS_PER_CHANGE_BYTES:
        raise ValueError(f"KPI facts of {size} bytes, over the {FACTS_PER_CHANGE_BYTES} cap")
    return CheckedFacts(encoded)


def encode_facts(facts: dict[str, Any]) -> dict[str, bytes]:
    """``{scope: fact}`` with each fact as JSON, each distinct fact encoded once (the scopes
    of one owner share one fact object)."""
    out: dict[str, bytes] = {}
    last: Any = None
    blob = b""
    for scope, fact in facts.items():
        if fact is not last:
            last, blob = fact, dumps(fact)
        out[scope] = blob
    return out


def encoded_by_scope(by_scope: dict[str, list[Any]]) -> dict[str, list[bytes]]:
    """Facts grouped by scope as objects (the reference grouping,
    :func:`~streams.kpis.facts.facts_by_scope`, or facts built by hand) as JSON, for
    :func:`facts_records`; a fact shared by several scopes is encoded once. The worker's
    own path encodes in the check and groups with :func:`checked_facts_by_scope`."""
    seen: dict[int, bytes] = {}
    out: dict[str, list[bytes]] = {}
    for scope, facts in by_scope.items():
        encoded = out[scope] = []
        for fact in facts:
            blob = seen.get(id(fact))
            if blob is None:
                blob = seen[id(fact)] = dumps(fact)
            encoded.append(blob)
    return out


@dataclass
class ScopedFacts:
    """The KPI facts of one result's changes, encoded and grouped by scope
    (:meth:`FactsHook.derive`)."""

    by_scope: dict[str, list[bytes]]
    #: the latest event time among the changes counted (``None``: none in range)
    watermark: float | None


def merge_scoped(parts: Sequence[ScopedFacts]) -> ScopedFacts:
    """Consecutive results' facts as one: per scope in result order (so each scope's facts
    keep the order of their changes), the latest watermark."""
    if len(parts) == 1:
        return parts[0]
    by_scope: dict[str, list[bytes]] = {}
    marks = [p.watermark for p in parts if p.watermark is not None]
    for part in parts:
        for scope, facts in part.by_scope.items():
            by_scope.setdefault(scope, []).extend(facts)
    return ScopedFacts(by_scope, max(marks) if marks else None)


class FactsHook:
    """The shipper's KPI change hook: the facts of each queued result grouped by scope,
    then sent for every result written together, one message per partition of the facts
    topic (or more for a big shipment); the shipper awaits their acks with the alerts',
    before the states are written."""

    #: grouped in the write stage: one facts message per partition for many shipments
    prompt = False

    def __init__(
        self, rules: FactRules, directory: Callable[[], OrgDirectory], runtime: KpiRuntime,
        producer: Any, topic: str,
    ) -> None:  # fmt: skip
        self.rules = rules
        self.directory = directory
        self.runtime = runtime
        self.producer = producer
        self.topic = topic

    def derive(self, changes: Sequence[Change]) -> ScopedFacts:
        runtime = self.runtime
        by_scope = checked_facts_by_scope(
            changes, self.rules, self.directory(), runtime.last_day(), runtime.skips
        )
        wm = batch_watermark(changes, runtime.latest_allowed()) if by_scope else None
        return ScopedFacts(by_scope, wm)

    async def send(self, derived: Sequence[ScopedFacts]) -> list[Any]:
        facts = merge_scoped(derived)
        if not facts.by_scope:
            return []
        runtime = self.runtime
        wm = facts.watermark
        if wm is None:  # facts exist, so some change was in range; kept total anyway
            wm = runtime.watermark if runtime.watermark is not None else 0.0
        producer = self.producer._ensure_producer()
        partition_of = await partitioner(producer, self.topic)
        records = list(facts_records(facts.by_scope, partition_of, wm))
        futures = await send_batched(producer, self.topic, records)
        runtime.messages_sent += len(records)
        return list(futures)


def facts_check(
    rules: FactRules, directory: Callable[[], OrgDirectory], runtime: KpiRuntime
) -> Callable[[Change], CheckedFacts]:
    """The engine's ``kpi_facts`` check as the worker installs it: :func:`check_facts` with
    the directory of the moment and the runtime's latest day and skips. Harnesses (the
    stage benchmark) install this same check, so they cannot call it differently."""

    def check(change: Change) -> CheckedFacts:
        return check_facts(change, rules, directory(), runtime.last_day(), runtime.skips)

    return check


def checked_facts_by_scope(
    changes: Iterable[Change],
    rules: FactRules,
    directory: Any,
    last_day: int,
    skips: Skips,
) -> dict[str, list[bytes]]:
    """:func:`~streams.kpis.facts.facts_by_scope`, encoded, reusing the facts
    :func:`check_facts` kept on each change; a change without them whose extraction raises
    adds nothing."""
    out: dict[str, list[bytes]] = {}
    for change in changes:
        checked = change.derived.get(FACTS_STAGE)
        if isinstance(checked, CheckedFacts):
            encoded = checked.facts
        else:
            try:
                encoded = encode_facts(extract(change, rules, directory, last_day, skips))
            except Exception as exc:  # one change's facts, never the shipment
                skips.note("extract", "processing_error", type(exc).__name__)
                continue
        for scope, fact in encoded.items():
            found = out.get(scope)
            if found is None:
                out[scope] = [fact]
            else:
                found.append(fact)
    return out


def facts_records(
    by_scope: dict[str, list[bytes]],
    partition_of: Callable[[bytes], int],
    watermark: float,
    per_message: int = FACTS_PER_MESSAGE,
    max_bytes: int = FACTS_MESSAGE_BYTES,
) -> Iterator[tuple[int, None, bytes]]:
    """``(partition, key, value)`` records of a shipment's encoded facts: one message per
    partition (``partition_of`` the scope's name) holding the facts of all its scopes, in
    order per scope, with at most ``per_message`` facts and about ``max_bytes`` each; a
    scope that does not fit goes on in the next message of the same partition (applied in
    order, and each fact's input position still deduplicates a replay).

    Each message is ``{"wm": watermark, "sc": {scope: [fact, ...], ...}}``, joined from the
    facts' own JSON: the bytes ``orjson`` gives for the whole object."""
    head = b'{"wm":' + dumps(watermark) + b',"sc":{'
    by_partition: dict[int, list[tuple[str, list[bytes]]]] = {}
    for scope, facts in by_scope.items():
        if facts:
            by_partition.setdefault(partition_of(scope.encode()), []).append((scope, facts))
    for partition, scopes in by_partition.items():
        parts: list[bytes] = []  # '"scope":[fact,...]' of the message being built
        count = size = 0
        for scope, facts in scopes:
            name = dumps(scope)
            start = 0
            for i, fact in enumerate(facts):
                if count and (count >= per_message or size + len(fact) > max_bytes):
                    if i > start:
                        parts.append(name + b":[" + b",".join(facts[start:i]) + b"]")
                    yield partition, None, head + b",".join(parts) + b"}}"
                    parts, count, size, start = [], 0, 0, i
                count += 1
                size += len(fact) + 1
            parts.append(name + b":[" + b",".join(facts[start:]) + b"]")
            size += len(name) + 3
        yield partition, None, head + b",".join(parts) + b"}}"


def read_facts(key: bytes | None, value: bytes) -> tuple[list[tuple[str, Any]], float]:
    """The ``(scope, facts)`` pairs and the watermark of a ``kpi-facts`` message, of either
    layout (see the module's docstring); raises on any other shape. The facts themselves
    are checked where they are applied (:meth:`~streams.kpis.store.KpiStore.apply`)."""
    payload = orjson.loads(value)
    wm = float(payload["wm"])
    scopes = payload.get("sc")
    if scopes is not None:
        if not isinstance(scopes, dict):
            raise TypeError("the scopes of a facts message are not an object")
        return list(scopes.items()), wm
    if key is None:
        raise TypeError("a facts message of one scope without a key")
    return [(key.decode(), payload["ev"])], wm


def apply_message(
    runtime: KpiRuntime, scopes: Iterable[tuple[str, Any]], watermark: float
) -> list[tuple[str, ApplyResult]]:
    """What the kpis agent does with a facts message read by :func:`read_facts`: each
    scope's facts applied against the watermark so far, then the watermark moved to the
    message's. Harnesses call it too, so they apply a message as the worker does."""
    results = [(scope, runtime.apply(scope, facts)) for scope, facts in scopes]
    runtime.advance(watermark)
    return results
