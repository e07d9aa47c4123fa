"""The notifier: its own consumer group on ``crm.alerts``, at-least-once delivery.

For each partition, records are handled in order; the group offset is committed only after
every target accepted the alert or the give-up was written to ``crm.notify.dlq``. A kill -9
in between replays from the last commit: the alert is delivered again (receivers dedup on
``(alert_id, sequence)``).

Durable state of the open episodes = ``crm.alerts`` itself: when partitions are assigned
(start, rebalance) the view of each is rebuilt by re-reading that partition from its start to
the committed offset, without posting, then all open episodes are re-posted. Nothing else has
to be kept in sync, and the view can never disagree with the alert log.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from streams.contracts.alerts import AlertEvent
from streams.metrics import Metrics
from streams.notify.episodes import OpenEpisodes
from streams.notify.http import AlertmanagerClient, Outcome, WebhookClient
from streams.notify.retry import RetryPolicy
from streams.notify.rule_kinds import point_rule_ids
from streams.notify.targets import load_webhooks
from streams.org import OrgDirectory, ReloadingDirectory
from streams.runtime.clients import new_consumer, new_producer
from streams.settings import Settings

log = logging.getLogger(__name__)
Record: TypeAlias = ConsumerRecord[bytes, bytes]
#: Client id suffix of the notifier's Kafka clients.
ROLE = "notify"


def notify_group(settings: Settings) -> str:
    return f"{settings.app_id}-notify"


@dataclass
class Notifier:
    settings: Settings
    metrics: Metrics
    org: OrgDirectory
    alertmanager: AlertmanagerClient | None
    webhooks: list[WebhookClient]
    policy: RetryPolicy
    am_policy: RetryPolicy
    producer: AIOKafkaProducer
    rng: random.Random = field(default_factory=random.Random)
    views: dict[int, OpenEpisodes] = field(default_factory=dict)
    point_rules: frozenset[str] = frozenset()
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # --- delivery ---------------------------------------------------------------------
    async def _attempts(
        self, target: str, status: str, policy: RetryPolicy, send: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        attempt = 0
        while True:
            attempt += 1
            outcome = await send()
            if outcome.ok:
                self.metrics.notifications.labels(target, status, "sent").inc()
                return outcome
            self.metrics.notifications.labels(target, status, "failed").inc()
            log.warning("notify %s failed (attempt %d): %s", target, attempt, outcome.reason)
            if not outcome.retryable or policy.gives_up_after(attempt):
                return Outcome(False, False, f"{outcome.reason} after {attempt} attempt(s)")
            self.metrics.notifications.labels(target, status, "retried").inc()
            await self.sleep(policy.delay(attempt, self.rng))

    async def _dead_letter(self, record: Record, target: str, reason: str) -> None:
        headers = [
            ("crm-pulse-reason", b"notify_failed"),
            ("crm-pulse-target", target.encode()),
            ("crm-pulse-error", reason.encode()),
            ("crm-pulse-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self.producer.send_and_wait(
            self.settings.notify_dlq_topic, record.value, key=record.key, headers=headers
        )

    async def handle(self, record: Record) -> None:
        """Deliver one ``crm.alerts`` record to every target that wants it (or dead-letter)."""
        try:
            alert = AlertEvent.model_validate_json(record.value or b"")
        except ValidationError as exc:
            await self._dead_letter(record, "decode", f"invalid_alert: {exc.errors()[:1]}")
            self.metrics.notifications.labels("decode", "unknown", "dead_lettered").inc()
            return
        view = self.views.get(record.partition)
        if view is None:
            view = self.views[record.partition] = self.new_view()
        if view.is_duplicate(alert):
            return
        status = alert.status.value
        jobs: list[tuple[str, Callable[[], Awaitable[Outcome]], RetryPolicy]] = []
        posts = view.apply(alert, datetime.now(UTC))
        am = self.alertmanager
        if am is not None and posts:
            jobs.append((am.name, lambda: am.post(posts), self.am_policy))
        for hook in self.webhooks:
            if hook.target.wants(alert):
                body = record.value or b""
                jobs.append((hook.name, lambda h=hook, b=body: h.post(b), self.policy))  # type: ignore[misc]
        results = await asyncio.gather(
            *(self._attempts(name, status, policy, send) for name, send, policy in jobs)
        )
        for (name, _, _), outcome in zip(jobs, results, strict=True):
            if outcome.ok:
                age = time.time() - alert.fired_at.timestamp()
                self.metrics.notification_latency.labels(name).observe(max(age, 0.0))
            else:
                await self._dead_letter(record, name, outcome.reason)
                self.metrics.notifications.labels(name, status, "dead_lettered").inc()

    def new_view(self) -> OpenEpisodes:
        return OpenEpisodes(
            self.org, self.settings.notify_record_url, point_rules=self.point_rules,
            point_hold=timedelta(seconds=self.settings.notify_point_hold_s),
        )  # fmt: skip

    async def refresh_point_rules(self) -> None:
        """Point rules from the live rule set (``crm.rules``); on failure the last set stays."""
        from streams.runtime.rules_topic import read_catalog

        try:
            catalog, _ = await read_catalog(self.settings)
        except Exception:
            log.exception("could not read %s: point rules unchanged", self.settings.rules_topic)
            return
        self.point_rules = point_rule_ids(catalog.rules.values())
        for view in self.views.values():
            view.point_rules = self.point_rules

    # --- open episodes ----------------------------------------------------------------
    def rebuild(self, partition: int, records: list[Record]) -> None:
        view = self.new_view()
        now = datetime.now(UTC)
        for record in records:
            try:
                view.apply(AlertEvent.model_validate_json(record.value or b""), now)
            except ValidationError:
                continue
        self.views[partition] = view

    async def repost(self) -> None:
        posts = [p for view in self.views.values() for p in view.repost()]
        self.metrics.notify_open_episodes.set(len(posts))
        if self.alertmanager is None or not posts:
            return
        outcome = await self.alertmanager.post(posts)
        result = "sent" if outcome.ok else "failed"
        self.metrics.notifications.labels(self.alertmanager.name, "REPOST", result).inc()


async def _read_until(settings: Settings, tp: TopicPartition, end: int) -> list[Record]:
    """Records of one partition from its start up to (excluding) offset ``end``."""
    if end <= 0:
        return []
    reader = new_consumer(settings, ROLE, group_id=None, enable_auto_commit=False)
    await reader.start()
    out: list[Record] = []
    try:
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        while True:
            batch = await reader.getmany(tp, timeout_ms=500, max_records=1000)
            records = batch.get(tp, [])
            out.extend(r for r in records if r.offset < end)
            if not records and await reader.position(tp) >= end:
                break
            if records and records[-1].offset >= end - 1:
                break
    finally:
        await reader.stop()
    return out


class _Rebuild(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, notifier: Notifier, consumer: AIOKafkaConsumer) -> None:
        self.notifier = notifier
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self.notifier.views.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.notifier.refresh_point_rules()  # before the rebuild: point alerts stay closed
        for tp in assigned:
            committed = await self.consumer.committed(tp) or 0
            records = await _read_until(self.notifier.settings, tp, committed)
            self.notifier.rebuild(tp.partition, records)
        await self.notifier.repost()


def build_policies(settings: Settings) -> tuple[RetryPolicy, RetryPolicy]:
    webhook = RetryPolicy(
        settings.notify_max_attempts, settings.notify_backoff_s, settings.notify_backoff_cap_s
    )
    # Alertmanager is infrastructure: retried until it is back (the partition waits, lag
    # grows, nothing is dropped) unless a limit is set.
    limit = settings.notify_alertmanager_max_attempts or 2**31
    am = RetryPolicy(limit, settings.notify_backoff_s, settings.notify_backoff_cap_s)
    return webhook, am


async def run_notifier(
    settings: Settings, metrics: Metrics, stop: asyncio.Event | None = None
) -> None:
    """Consume ``crm.alerts`` in group ``<app_id>-notify`` until ``stop`` is set."""
    stop = stop or asyncio.Event()
    org = ReloadingDirectory(settings.org_directory)  # re-read when the file changes
    targets = load_webhooks(settings.webhooks_file)
    webhook_policy, am_policy = build_policies(settings)
    producer = new_producer(settings, ROLE)
    consumer = new_consumer(
        settings,
        ROLE,
        group_id=notify_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=3_600_000,  # a long Alertmanager outage must not evict the member
    )
    async with aiohttp.ClientSession() as session:
        urls = settings.alertmanager_urls
        notifier = Notifier(
            settings=settings, metrics=metrics, org=org,
            alertmanager=AlertmanagerClient(session, urls) if urls else None,
            webhooks=[WebhookClient(session, t) for t in targets],
            policy=webhook_policy, am_policy=am_policy, producer=producer,
        )  # fmt: skip
        await producer.start()
        await consumer.start()
        consumer.subscribe([settings.alerts_topic], listener=_Rebuild(notifier, consumer))
        log.info(
            "notifier started: group=%s alertmanager=%d url(s) webhooks=%s",
            notify_group(settings), len(urls), [t.name for t in targets],
        )  # fmt: skip
        reposter = asyncio.create_task(_repost_loop(notifier, settings.notify_repost_s, stop))
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for tp, records in batches.items():
                    for record in records:
                        await notifier.handle(record)
                    try:
                        await consumer.commit({tp: records[-1].offset + 1})
                    except (CommitFailedError, IllegalStateError) as exc:
                        # Revoked meanwhile: the new owner delivers these again (at least once).
                        log.warning("commit of %s skipped after a rebalance: %s", tp, exc)
        finally:
            stop.set()
            reposter.cancel()
            await consumer.stop()
            await producer.stop()


async def _repost_loop(notifier: Notifier, period: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=period)
        except TimeoutError:
            try:
                await notifier.refresh_point_rules()
                await notifier.repost()
            except Exception:  # a failed re-post is retried at the next period
                log.exception("re-post of open episodes failed")
