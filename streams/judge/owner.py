"""``frequency`` rules with ``per: owner``: matching changes re-keyed by owner, counted per
(rule, owner) on the owner's partition (pure).

1. :func:`owner_hits` picks, in each ingest batch, the changes an owner-scoped frequency rule
   counts, as one derived record per (rule, change) for the internal ``<prefix>.frequency``
   topic: key = owner id, partition = :func:`owner_partition`. The ingest shipper awaits
   their acks before it writes the record states, so a crash replays them (at least once).
2. :func:`count_hits` folds such messages into the changelog-backed ``frequency-counts``
   table (key: rule id + owner id) with :func:`streams.rules.types.frequency.tally`, which
   keeps the event ids: a replayed message never counts twice. Each firing is a point
   episode whose ``alert_id`` comes from the rule, the owner and the event that completed
   the count, so a replay yields the same id, and its time is the time the completing change
   was ingested (carried in the message), so a replay renders the same alert. The count state
   remembers the position of the last hit applied (``q``): a catch-up replay of the internal
   topic is skipped by position, whatever the size of the event id list.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.contracts.alerts import Subject
from streams.decode import RawRecord
from streams.jsonbytes import dumps_kept
from streams.judge.episodes import AlertContext, step_context
from streams.judge.result import BatchResult, StateLookup, rule_failed
from streams.rules.change import Change
from streams.rules.model import FrequencyRule
from streams.rules.ruleset import CompiledRule, RuleSet
from streams.rules.types.frequency import Hit, matches, tally

_SEP = "\x1f"


def owner_partition(owner: str, partitions: int) -> int:
    """The partition of an owner on owner-keyed internal topics (stable across workers)."""
    return zlib.crc32(owner.encode()) % partitions


def owner_rules(rules: RuleSet) -> list[tuple[CompiledRule, FrequencyRule]]:
    """Enabled ``frequency`` rules counted per owner (compiled, and their model)."""
    return [
        (c, c.rule) for c in rules.rules
        if c.rule.enabled and isinstance(c.rule, FrequencyRule) and c.rule.per == "owner"
    ]  # fmt: skip


def _applies(rule: FrequencyRule, change: Change, owner: str) -> bool:
    scope = rule.applies_to
    return (
        change.event.entity is scope.entity
        and (scope.sources is None or change.event.source in scope.sources)
        and (scope.owners is None or owner in scope.owners)
    )


def owner_hits(rules: RuleSet, changes: Sequence[Change]) -> BatchResult:
    """The changes each owner-scoped frequency rule counts: one derived ``(owner, message)``
    per (rule, change); rule errors and skips (no owner) counted in ``stats``."""
    out = BatchResult()
    scoped = owner_rules(rules)
    if not scoped:
        return out
    stats = out.stats
    for change in changes:
        owner = change.owner or change.event.owner_id
        for compiled, rule in scoped:
            if not _applies(rule, change, owner or ""):
                continue
            try:
                hit = matches(rule, change, compiled.guard)
            except Exception as exc:  # isolated and counted like any rule error
                rule_failed(stats, compiled.id, exc, f"change {change.event.event_id}")
                continue
            if not hit:
                continue
            if not owner:
                stats.skips[(compiled.id, "no_owner")] += 1
                continue
            event = change.event
            out.derived.append((owner, orjson.dumps({
                "r": compiled.id, "e": event.event_id, "t": event.epoch,
                "id": event.entity_id, "n": change.now.timestamp(),
            })))  # fmt: skip
    return out


def state_key(rule_id: str, owner: str) -> bytes:
    return f"{rule_id}{_SEP}{owner}".encode()


def _context(compiled: CompiledRule, owner: str, hit: Hit, event_ids: Sequence[str],
             now: datetime) -> AlertContext:  # fmt: skip
    variables: dict[str, Any] = {
        "rule": {"id": compiled.id, "version": compiled.rule.version},
        "subject": {"kind": "owner", "id": owner},
        "owner": {"id": owner},
    }
    return AlertContext(
        subject=Subject(kind="owner", id=owner), owner_id=owner, cause=hit.event_id, now=now,
        variables=variables, event_ids=list(event_ids),
        occurred_at=datetime.fromtimestamp(hit.ts, tz=UTC),
    )  # fmt: skip


def _decode(raw: RawRecord) -> tuple[str, str, Hit, float | None] | None:
    try:
        body = orjson.loads(raw.value or b"")
        owner = (raw.key or b"").decode()
        hit = Hit(event_id=str(body["e"]), ts=float(body["t"]), record=str(body["id"]))
        ingested = body.get("n")
        return owner, str(body["r"]), hit, None if ingested is None else float(ingested)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        return None


def _replayed(state: dict[str, Any], position: tuple[int, int]) -> bool:
    last = state.get("q")
    return last is not None and last[0] == position[0] and position[1] <= last[1]


def count_hits(
    rules: RuleSet, records: Sequence[RawRecord], lookup: StateLookup, now: datetime
) -> BatchResult:
    """Fold repartitioned hits into the (rule, owner) counts; alerts and state writes out.

    ``stats.duplicates`` counts replayed hits; hits of a rule no longer owner-scoped are
    dropped (``stats.invalid["rule_gone"]``)."""
    result = BatchResult()
    cache: dict[bytes, tuple[int, dict[str, Any]]] = {}
    for raw in records:
        decoded = _decode(raw)
        if decoded is None:
            result.stats.invalid["unreadable_hit"] += 1
            continue
        owner, rid, hit, ingested = decoded
        compiled = rules.get(rid)
        rule = compiled.rule if compiled is not None else None
        if compiled is None or not isinstance(rule, FrequencyRule) or rule.per != "owner" \
                or not rule.enabled:  # fmt: skip
            result.stats.invalid["rule_gone"] += 1
            continue
        key = state_key(rid, owner)
        cached = cache.get(key)
        try:
            if cached is not None:
                state = cached[1]
            else:
                blob = lookup(key)
                state = orjson.loads(blob) if blob else {}
            if _replayed(state, (raw.partition, raw.offset)):
                result.stats.replays += 1
                continue
            at = now if ingested is None else datetime.fromtimestamp(ingested, tz=UTC)
            counted = tally(rule, state, hit)
            if counted.duplicate:
                result.stats.duplicates += 1
                continue
            if counted.outcome.holds:
                ctx = _context(compiled, owner, hit, counted.event_ids, at)
                alerts, _ = step_context(compiled, ctx, counted.outcome, None)
                result.alerts.extend(alerts)
        except Exception as exc:  # one rule never stops the others
            rule_failed(result.stats, rid, exc, f"owner {owner}")
            continue
        cache[key] = (raw.partition, {**counted.state, "q": [raw.partition, raw.offset]})
    for key, (partition, state) in cache.items():
        result.writes[key] = (partition, dumps_kept(state))
    return result
