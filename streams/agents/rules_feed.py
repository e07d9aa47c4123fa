"""The rule feed: every worker reads the whole compacted rules topic, from offset 0, and
swaps its compiled rule set when a rule changes (no restart, no consumer group: each
worker holds every rule).

Start-up: the rules topic is created when missing; when it is empty and
``Settings.rules_seed`` is true, the valid rules of ``Settings.rules_dir`` are published
(seeding); the feed then reads up to the end of the topic and swaps in exactly what it
says before the ingest agent handles its first batch. Afterwards the topic wins: files
change live rules only through ``crm-pulse rules apply`` or the HTTP API.

A record that does not validate is counted (``rule_reloads{result="rejected"}``), logged
with every field error, and changes nothing: the previous version of that rule stays live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from streams.rules.catalog import Applied, RuleCatalog, encode_rule
from streams.rules.loader import load_paths
from streams.rules.model import Rule
from streams.runtime.clients import behind
from streams.runtime.container import Runtime
from streams.runtime.rules_topic import open_rules_consumer, publish

log = logging.getLogger(__name__)

RETRY_S = 2.0


class RuleFeed:
    """Folds the rules topic into a :class:`RuleCatalog` and swaps the engine's rule set."""

    def __init__(self, pulse: Runtime) -> None:
        self.pulse = pulse
        self.catalog = RuleCatalog()
        self.ready = pulse.rules_ready  # set once the topic is read: events are judged from then
        self.records_seen = 0

    def live_rules(self) -> dict[str, Rule]:
        """The live rules by id (what the rules topic says)."""
        return {rid: c.rule for rid, c in self.catalog.rules.items()}

    def fold(
        self, records: Iterable[tuple[bytes | None, bytes | None]], *, swap: bool = True
    ) -> list[Applied]:
        """Apply topic records; swap the rule set once if anything changed (no I/O)."""
        applied = self.catalog.apply_all(records)
        metrics = self.pulse.metrics
        for item in applied:
            self.records_seen += 1
            if item.outcome == "rejected":
                metrics.rule_reloads.labels(result="rejected").inc()
                details = "; ".join(f"field '{p.field}': {p.message}" for p in item.problems)
                live = self.catalog.rules.get(item.rule_id)
                keep = f"version {live.rule.version} stays live" if live else "not live"
                log.error("rule %s refused (%s); %s", item.rule_id, details, keep)
            elif item.outcome in ("added", "changed", "deleted"):
                log.info("rule %s %s%s", item.rule_id, item.outcome,
                         " (type changed: its per-record state is dropped)"
                         if item.type_changed else "")  # fmt: skip
        if swap and any(item.outcome in ("added", "changed", "deleted") for item in applied):
            self.pulse.swap_rules(self.catalog.ruleset())
        return applied

    async def seed(self) -> int:
        """Publish the valid rules of the rules folder (the topic is empty)."""
        settings = self.pulse.settings
        if not settings.rules_dir.exists():
            return 0
        result = load_paths([settings.rules_dir])
        for problem in result.problems:
            log.error("seeding: rule refused: %s", problem)
        sent = await publish(
            settings, [(r.rule.id.encode(), encode_rule(r.rule)) for r in result.rules]
        )
        log.info("rules topic was empty: seeded %d rule(s) from %s", sent, settings.rules_dir)
        return sent

    async def run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker went away, etc.: keep the live rules, retry
                log.exception("rule feed interrupted; live rules kept, retrying")
                await asyncio.sleep(RETRY_S)

    async def _consume(self) -> None:
        settings = self.pulse.settings
        consumer, tps = await open_rules_consumer(settings)
        try:
            catalog_before = len(self.catalog.rules)
            ends = await consumer.end_offsets(tps)
            if not self.ready.is_set() and settings.rules_seed and not any(ends.values()):
                await self.seed()
                ends = await consumer.end_offsets(tps)
            pending: list[tuple[bytes | None, bytes | None]] = []
            while await behind(consumer, ends):
                batches = await consumer.getmany(*tps, timeout_ms=200)
                pending.extend((r.key, r.value) for b in batches.values() for r in b)
            self.catalog = RuleCatalog()  # a re-read rebuilds from scratch, with no await
            self.fold(pending, swap=False)  # between the reset, the fold and the swap
            self.pulse.swap_rules(self.catalog.ruleset())  # the topic wins, even when empty
            if not self.ready.is_set():
                log.info("rules topic read: %d live rule(s)", len(self.catalog.rules))
            elif catalog_before != len(self.catalog.rules):
                log.info("rules topic re-read: %d live rule(s)", len(self.catalog.rules))
            self.ready.set()
            while True:
                batches = await consumer.getmany(*tps, timeout_ms=500)
                records = [(r.key, r.value) for b in batches.values() for r in b]
                if records:
                    self.fold(records)
        finally:
            await consumer.stop()


def register(app: Any, rt: Runtime) -> RuleFeed:
    feed = RuleFeed(rt)

    @app.task
    async def rule_feed(app: Any) -> None:
        await feed.run()

    rt.rule_feed = feed
    return feed
