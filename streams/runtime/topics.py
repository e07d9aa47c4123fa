"""Creating the public topics with the right partitions and cleanup policies (Kafka I/O)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.runtime.clients import new_admin
from streams.settings import Settings

log = logging.getLogger(__name__)


def topic_specs(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Topic name -> (partitions, config) for every public topic and the internal topics
    the agents read."""
    parts = settings.topic_partitions
    compacted = {"cleanup.policy": "compact"}
    return {
        settings.events_topic: (parts, {}),
        settings.dlq_topic: (parts, {}),
        settings.notify_dlq_topic: (parts, {}),
        settings.alerts_topic: (parts, {}),
        settings.rules_topic: (1, compacted),
        settings.kpis_topic: (parts, compacted),
        settings.silences_topic: (1, compacted),
        # internal topics the worker's agents read: created up front, so that the first
        # group assignment has them (Faust creates them only once its agents start, after
        # the group formed: the assignor skipped them, logging "missing topic" errors)
        settings.kpi_facts_topic: (parts, {}),
        settings.frequency_topic: (parts, {}),
    }


async def _wait_for_leaders(admin: Any, names: list[str], timeout: float = 30.0) -> None:
    """Wait until every partition of ``names`` has a leader (producing before that fails)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(
            topic.get("partitions") and all(p.get("leader", -1) >= 0 for p in topic["partitions"])
            for topic in described
        ):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics {names} have no leader after {timeout}s")
        await asyncio.sleep(0.1)


async def ensure_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    """Create the missing public topics; returns the names created."""
    from aiokafka.admin import NewTopic

    admin = new_admin(settings, "topics", bootstrap_servers=bootstrap or settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=parts, replication_factor=settings.topic_replicas,
                     topic_configs=config)
            for name, (parts, config) in topic_specs(settings).items()
            if name not in existing
        ]  # fmt: skip
        if wanted:
            await admin.create_topics(wanted)
            log.info("created topics %s", [t.name for t in wanted])
            await _wait_for_leaders(admin, [t.name for t in wanted])
        return [t.name for t in wanted]
    finally:
        await admin.close()
