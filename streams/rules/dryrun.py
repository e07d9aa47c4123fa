"""``crm-pulse rules test``: run rules over saved events offline, through the very code
the worker runs (:meth:`Engine.process`), with an in-memory state dict instead of the
Faust table. Same events and rules in, same alerts out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from streams.clock import Clock, utcnow
from streams.contracts.alerts import AlertEvent
from streams.decode import RawRecord
from streams.engine import BatchResult, Engine
from streams.rules.ruleset import RuleSet


@dataclass
class DryRun:
    alerts: list[AlertEvent] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # line, reason, detail
    events: int = 0
    rule_errors: dict[str, int] = field(default_factory=dict)


def _key(line: bytes) -> bytes | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    entity_id = data.get("entity_id") if isinstance(data, dict) else None
    return str(entity_id).encode() if entity_id is not None else None


def run_events(
    rules: RuleSet,
    lines: Iterable[bytes],
    *,
    batch_max: int = 2000,
    dedup_window: int = 8,
    clock: Clock = utcnow,
) -> DryRun:
    """Feed JSONL lines (one ChangeEvent each; blank lines skipped) through the engine."""
    engine = Engine(rules, dedup_window=dedup_window, clock=clock)
    state: dict[bytes, bytes] = {}
    out = DryRun()
    batch: list[RawRecord] = []

    def flush() -> None:
        result: BatchResult = engine.process(batch, state.get)
        for key, (_, blob) in result.writes.items():
            state[key] = blob
        out.alerts.extend(result.alerts)
        for raw, dead in result.dead:
            out.refused.append((raw.offset, dead.reason, dead.detail))
        for rid, n in result.stats.rule_errors.items():
            out.rule_errors[rid] = out.rule_errors.get(rid, 0) + n
        out.events += sum(result.stats.events.values())
        batch.clear()

    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        batch.append(RawRecord("file", 0, number, _key(line), line))
        if len(batch) >= batch_max:
            flush()
    if batch:
        flush()
    return out
