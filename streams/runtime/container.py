"""The typed container of one worker: every collaborator the agents share, by name and type.

:func:`build_runtime` creates the container with everything the shipper needs (the
alerting state, the org directory, the hook lists, the rules-ready event) *before* any agent
is registered, so no registration order can switch alert gating off. The agents then
register onto it (``register(app, runtime)`` in each agent module; :mod:`streams.app`
calls them), and :meth:`Runtime.check_wired` refuses to start a worker with a missing part
(:class:`~streams.errors.WiringError`). Agents import this module, never
:mod:`streams.app`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.decode import DecodeLimits
from streams.errors import WiringError
from streams.judge.batch import Engine
from streams.kpis.runtime import KpiRuntime
from streams.metrics import Metrics
from streams.org import ReloadingDirectory
from streams.rules.model import Rule
from streams.rules.ruleset import RuleSet
from streams.runtime.alerting import AlertingRuntime
from streams.runtime.shipment import ChangeHook
from streams.runtime.shipped_counts import ShipProgress
from streams.runtime.shipper import Shipper
from streams.settings import Settings

log = logging.getLogger(__name__)

#: Raw bytes in and out: the agents decode and encode themselves.
RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
RAW_SER: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}

#: Called with the previous and the new rule set after each swap.
RuleHook = Callable[[RuleSet, RuleSet], None]

#: The agents whose death stops the worker; each must be registered before it starts.
REQUIRED_AGENTS = ("ingest", "kpis", "kpi_rules", "frequency")


class LiveRules(Protocol):
    """What the HTTP API reads of the rule feed."""

    def live_rules(self) -> Mapping[str, Rule]: ...


@dataclass(frozen=True)
class Topics:
    """The topics several agents share (each created once)."""

    events: Any
    dlq: Any
    alerts: Any
    kpis: Any
    silences: Any


@dataclass(eq=False)
class Runtime:
    """The running pieces of one worker."""

    settings: Settings
    app: Any
    metrics: Metrics
    engine: Engine
    topics: Topics
    entity_table: Any
    #: the one org directory (live: re-read when its file changes)
    org: ReloadingDirectory
    alerting: AlertingRuntime
    shipper: Shipper
    #: set by the rule feed once the rules topic is read: no event is judged before
    rules_ready: asyncio.Event
    change_hooks: list[ChangeHook]
    rule_hooks: list[RuleHook]
    #: agent name -> Faust agent whose death stops the worker (:mod:`streams.liveness`)
    agents: dict[str, Any] = field(default_factory=dict)
    rule_feed: LiveRules | None = None
    kpis: KpiRuntime | None = None
    #: a stop began (a signal or a crash): ``/health`` fails from then on
    stopping: bool = False
    #: the shipper's progress as ``/health`` sees it (a shipment not acknowledged for long)
    ship_progress: ShipProgress = field(default_factory=ShipProgress)

    @property
    def changelog_topic(self) -> str:
        """Name of the entity-state table's changelog topic."""
        return str(self.entity_table.changelog_topic.get_topic_name())

    def state_get(self, key: bytes) -> bytes | None:
        value = self.entity_table.data.get(key)
        return value if value is None or isinstance(value, bytes) else bytes(value)

    def watch(self, name: str, agent: Any) -> None:
        """Register an agent whose death stops the worker."""
        if name in self.agents:
            raise WiringError(f"agent {name!r} registered twice")
        self.agents[name] = agent

    def check_wired(self) -> None:
        """Raise :class:`WiringError` naming every part no agent registered."""
        missing = [f"agent {name!r}" for name in REQUIRED_AGENTS if name not in self.agents]
        if self.rule_feed is None:
            missing.append("the rule feed (nothing would set rules_ready)")
        if self.kpis is None:
            missing.append("the KPI runtime")
        if missing:
            raise WiringError("the worker is not wired: missing " + ", ".join(missing))

    def swap_rules(self, rules: RuleSet) -> None:
        """Atomically replace the live rule set (the next batch uses it); then calls the
        ``rule_hooks`` with the previous and the new set."""
        previous = self.engine.rules
        self.engine.rules = rules
        for hook in self.rule_hooks:
            hook(previous, rules)
        self.metrics.rule_reloads.labels(result="ok").inc()
        self.metrics.rules_live.set(sum(1 for c in rules.rules if c.rule.enabled))
        self.metrics.rules_version.clear()
        self.metrics.rules_version.labels(version=rules.version).set(1)
        self.metrics.init_rule_series((c.id, c.rule.severity.value) for c in rules.rules)
        log.info("rule set %s live: %d rule(s)", rules.version, len(rules))


def build_runtime(settings: Settings, app: Any, metrics: Metrics) -> Runtime:
    """The container with its shared topics, the entity table, the engine and every
    collaborator of the shipper, before any agent is registered."""
    parts = settings.topic_partitions
    topics = Topics(
        events=app.topic(settings.events_topic, partitions=parts, **RAW, **RAW_SER),
        dlq=app.topic(settings.dlq_topic, partitions=parts, **RAW, **RAW_SER),
        alerts=app.topic(settings.alerts_topic, partitions=parts, **RAW, **RAW_SER),
        kpis=app.topic(settings.kpis_topic, partitions=parts, **RAW, **RAW_SER),
        silences=app.topic(settings.silences_topic, partitions=1, **RAW, **RAW_SER),
    )
    entity_table = app.Table(
        "entity-state", partitions=parts, help="Latest state per CRM record.", **RAW
    )
    org = ReloadingDirectory(settings.org_directory)
    if settings.kpi_directory is not None:
        log.warning("CRM_PULSE_KPI_DIRECTORY is deprecated: use CRM_PULSE_ORG_DIRECTORY_FILE")
    engine = Engine(
        dedup_window=settings.dedup_window,
        limits=DecodeLimits.from_settings(settings),
        state_max_bytes=settings.state_max_bytes,
        org=org,
    )
    alerting = AlertingRuntime.from_settings(settings, org)
    alerting.silences_topic = topics.silences
    change_hooks: list[ChangeHook] = []
    shipper = Shipper(
        app=app, settings=settings, metrics=metrics, alerting=alerting,
        entity_table=entity_table, clock=lambda: engine.clock(), change_hooks=change_hooks,
    )  # fmt: skip
    return Runtime(
        settings=settings, app=app, metrics=metrics, engine=engine, topics=topics,
        entity_table=entity_table, org=org, alerting=alerting, shipper=shipper,
        rules_ready=asyncio.Event(), change_hooks=change_hooks, rule_hooks=[],
    )  # fmt: skip
