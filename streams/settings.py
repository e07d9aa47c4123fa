"""The one configuration object of CRM Pulse.

Every knob lives here, read once from the environment (prefix ``CRM_PULSE_``) and frozen.
Secrets are :class:`~pydantic.SecretStr`: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Default pipeline order of deal stages; moving to an earlier one is a regression.
DEFAULT_STAGE_ORDER: tuple[str, ...] = (
    "Prospecting",
    "Qualification",
    "Engaging",
    "Proposal",
    "Negotiation",
    "Won",
)


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "crm-pulse"


class Settings(BaseSettings):
    """Frozen, env-prefixed settings (``CRM_PULSE_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="CRM_PULSE_", frozen=True, extra="ignore")

    # --- identity and Kafka -------------------------------------------------------------
    app_id: str = Field("crm-pulse", description="Faust app id = Kafka consumer group.")
    broker: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers, Faust URL form (kafka://host:port;host2:port).",
    )
    topic_prefix: str = Field("crm", description="Prefix of every topic name.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the input topic.")
    topic_replicas: int = Field(1, ge=1, description="Replication factor of created topics.")
    data_dir: Path = Field(Path(".crm-pulse/data"), description="Local state (RocksDB/memory).")
    store: str = Field("memory://", description="Faust table store URL.")

    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer session timeout: how fast a dead worker is replaced."
    )

    # --- hot path -----------------------------------------------------------------------
    batch_consumer: bool = Field(
        True, description="Deliver input records to the engine in batches (see transport.py)."
    )
    batch_max: int = Field(2000, ge=1, description="Max events handled per batch.")
    batch_within_ms: int = Field(20, ge=1, description="Max wait to fill a batch (ms).")
    dedup_window: int = Field(8, ge=0, description="Event ids remembered per record.")
    gc_gen0_threshold: int = Field(
        20_000,
        ge=0,
        description="Allocations between young-generation garbage collections of the worker "
        "(Python's default 700 rescans the batch's live objects many times per batch); "
        "0 keeps Python's defaults. See docs/performance.md.",
    )
    stage_order: tuple[str, ...] = Field(DEFAULT_STAGE_ORDER, description="Pipeline order.")
    closed_stages: tuple[str, ...] = Field(("Won", "Lost"), description="Terminal stages.")

    # --- rules --------------------------------------------------------------------------
    rules_dir: Path = Field(Path("rules"), description="Folder of YAML rule files.")
    rules_seed: bool = Field(
        True, description="Publish the valid rules of rules_dir when the rules topic is empty."
    )

    # --- alerting ------------------------------------------------------------------------
    alert_tick_s: float = Field(1.0, gt=0, description="Timer scan interval (seconds).")
    timer_batch: int = Field(1000, ge=1, description="Max due records judged per timer scan.")
    notify_budget_per_hour: int = Field(
        0, ge=0, description="Notifications per owner per hour before digesting (0: no limit)."
    )
    notify_budget_window_s: float = Field(
        3600.0, gt=0, description="Length of the budget window (s, UTC-aligned; one hour)."
    )
    org_directory_file: Path | None = Field(
        None, description="CSV/YAML org directory: owner -> manager, team, region, timezone."
    )
    alert_board_keep: int = Field(
        10_000, ge=0, description="Resolved alerts kept in memory for GET /alerts."
    )

    # --- KPIs ---------------------------------------------------------------------------
    kpi_catalog: Path | None = Field(
        None, description="KPI catalog YAML (default: the catalog shipped in streams/kpis/)."
    )
    kpi_directory: Path | None = Field(
        None,
        description="Org directory CSV (owner,team,region or sales_agent,manager,"
        "regional_office); re-read when the file changes.",
    )
    kpi_allowed_lateness_days: int = Field(
        7,
        ge=0,
        description="Events this many days behind the KPI watermark still count; "
        "later ones are counted as late (metric) and not applied.",
    )
    kpi_trust_floor: float = Field(
        0.5, ge=0, le=1, description="KPI values with a lower trust are published untrusted."
    )
    kpi_publish_interval_s: float = Field(
        1.0, gt=0, description="How often changed KPI snapshots are published."
    )
    kpi_publish_max_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Most of the worker's time KPI publication may take: under a backlog, "
        "rounds are spaced out so that computing snapshots takes at most this share.",
    )
    kpi_publish_recent_days: int = Field(
        14, ge=0, description="Day/week windows published this many days behind the watermark."
    )
    kpi_metrics_per_owner: bool = Field(
        False, description="Also export per-owner KPI gauges (one series per owner)."
    )

    # --- HTTP ---------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Interface the HTTP server binds.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of /metrics, /health, API.")
    api_token: SecretStr | None = Field(None, description="Bearer token of write endpoints.")
    api_auth_disabled: bool = Field(
        False, description="Explicitly run the write API without a token (never in production)."
    )
    web_tables_enabled: bool = Field(
        False, description="Expose Faust's table-browsing views (only behind a protected proxy)."
    )

    # --- local broker (demo and tests) --------------------------------------------------
    kafka_version: str = Field("4.1.1", description="Apache Kafka release fetched from Maven.")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Jar cache.")

    log_level: str = Field("info", description="Log level of the worker.")

    # --- observability ------------------------------------------------------------------
    housekeeping_interval_s: float = Field(
        5.0, gt=0, description="Period of the timer refreshing lag, active-alert and KPI gauges."
    )
    faust_metrics_enabled: bool = Field(
        False, description="Add Faust's own Prometheus monitor (crm_pulse_faust_*) to /metrics."
    )
    metrics_owner_label: bool = Field(
        False,
        description="Count alerts per owner id (crm_pulse_alerts_by_owner): opt-in, only for "
        "a bounded number of owners.",
    )

    # --- notifications (streams/notify, docs/notifications.md) ---------------------------
    notify_enabled: bool = Field(
        False, description="Run the notifier inside the worker (else: `crm-pulse notify`)."
    )
    alertmanager_url: str | None = Field(
        None,
        description="Alertmanager base URL(s), comma-separated for an HA pair "
        "(http://am-1:9093,http://am-2:9093).",
    )
    webhooks_file: Path | None = Field(None, description="YAML file of signed webhook targets.")
    notify_repost_s: float = Field(
        60.0, gt=0, description="Re-post period of open episodes (< Alertmanager resolve_timeout)."
    )
    notify_max_attempts: int = Field(6, ge=1, description="Attempts before crm.notify.dlq.")
    notify_alertmanager_max_attempts: int = Field(
        0, ge=0, description="Attempts per Alertmanager post; 0 = until it is back."
    )
    notify_backoff_s: float = Field(0.5, gt=0, description="First retry delay (doubles, jitter).")
    notify_backoff_cap_s: float = Field(30.0, gt=0, description="Longest retry delay.")
    notify_point_hold_s: float = Field(
        3600.0,
        gt=0,
        description="Point alerts (transition, frequency: never RESOLVED) are posted to "
        "Alertmanager with endsAt = fired_at + this.",
    )
    notify_record_url: str | None = Field(
        None, description="Record link template for annotations, e.g. https://crm/{entity}/{id}."
    )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_clean(cls, value: str) -> str:
        if not value or any(c in value for c in " /\\"):
            raise ValueError("topic_prefix must be non-empty without spaces or slashes")
        return value

    # --- derived names ------------------------------------------------------------------
    def topic(self, name: str) -> str:
        """Full topic name for a logical one (``events`` -> ``crm.events``)."""
        return f"{self.topic_prefix}.{name}"

    @property
    def events_topic(self) -> str:
        return self.topic("events")

    @property
    def dlq_topic(self) -> str:
        return self.topic("events.dlq")

    @property
    def alerts_topic(self) -> str:
        return self.topic("alerts")

    @property
    def rules_topic(self) -> str:
        return self.topic("rules")

    @property
    def silences_topic(self) -> str:
        return self.topic("silences")

    @property
    def kpis_topic(self) -> str:
        return self.topic("kpis")

    @property
    def kpi_facts_topic(self) -> str:
        return self.topic("kpi-facts")

    @property
    def frequency_topic(self) -> str:
        """Internal: matching changes of ``frequency`` rules counted per owner, keyed by owner."""
        return self.topic("frequency")

    @property
    def notify_dlq_topic(self) -> str:
        return self.topic("notify.dlq")

    @property
    def alertmanager_urls(self) -> tuple[str, ...]:
        raw = self.alertmanager_url or ""
        return tuple(u.strip().rstrip("/") for u in raw.split(",") if u.strip())

    @property
    def bootstrap_servers(self) -> str:
        """Bootstrap servers as plain ``host:port,host:port`` for aiokafka clients."""
        raw = self.broker.removeprefix("kafka://")
        return ",".join(part.removeprefix("kafka://") for part in raw.split(";"))
