"""The one configuration object of CRM Pulse.

Every knob lives here, read once from the environment (prefix ``CRM_PULSE_``) and frozen.
Secrets are :class:`~pydantic.SecretStr`: they print as ``**********`` and are never logged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
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

    max_message_bytes: int = Field(
        1_048_576,
        ge=65_536,
        description="The broker's message size limit (message.max.bytes; Kafka's default is "
        "1 MiB). The producer's max_request_size is set to it and every record the worker "
        "writes (states, alerts, KPI facts, dead letters) is built to fit it.",
    )
    state_max_bytes: int = Field(
        512 * 1024,
        ge=4_096,
        description="Cap of one encoded record state: beyond it the largest field values "
        "are cut with a marker (see streams/judge/state.py). At most max_message_bytes - 16 KiB.",
    )

    session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer session timeout: how fast a dead worker is replaced."
    )

    # --- input contract (docs/events.md) ------------------------------------------------
    max_event_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=900 * 1024,
        description="Largest input record (bytes); larger ones are refused as too_large. "
        "At most max_message_bytes - 16 KiB: a refused record with its dead-letter header, "
        "and every event a source writes, fit the broker's limit.",
    )
    max_event_time_skew_s: float = Field(
        86_400.0,
        ge=0,
        description="How far ahead of the worker's clock an event time may be (seconds, "
        "default 1 day: clock drift and time zones); later ones are refused as out_of_range. "
        "The KPI watermark never moves past the wall clock plus this skew either.",
    )
    min_event_time: datetime = Field(
        datetime(1990, 1, 1, tzinfo=UTC),
        description="Earliest accepted event time (RFC 3339 with an offset; default "
        "1990-01-01T00:00:00Z: admits historical CRM replays such as the 2016-2017 sample, "
        "refuses epoch-zero and year-1 defaults); earlier ones are refused as out_of_range.",
    )

    # --- hot path -----------------------------------------------------------------------
    batch_consumer: bool = Field(
        True,
        description="Deliver the input and KPI facts records to their handlers in batches "
        "(see transport.py).",
    )
    batch_max: int = Field(2000, ge=1, description="Max events handled per batch.")
    batch_within_ms: int = Field(20, ge=1, description="Max wait to fill a batch (ms).")
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=1500,
        description="How long the broker may hold a fetch request for partitions with no "
        "new records (ms; Faust's default 1500 stalled a busy input behind quiet topics).",
    )  # fmt: skip
    dedup_window: int = Field(
        8,
        ge=0,
        description="Event ids remembered per record: catches a source that redelivers an "
        "event at a new offset (replays of the same offset are skipped by position).",
    )
    gc_gen0_threshold: int = Field(
        20_000,
        ge=0,
        description="Allocations between young-generation garbage collections of the worker "
        "(Python's default 700 rescans the batch's live objects many times per batch); "
        "0 keeps Python's defaults. See docs/performance.md.",
    )
    stage_order: tuple[str, ...] = Field(DEFAULT_STAGE_ORDER, description="Pipeline order.")
    closed_stages: tuple[str, ...] = Field(("Won", "Lost"), description="Terminal stages.")

    # --- retention of the hot state (streams/retention.py) -------------------------------
    retention_closed_days: float = Field(
        30.0,
        ge=0,
        description="Closed deals (Won/Lost), finished activities/tasks and deleted records "
        "leave the entity table this many days after their last change (0: kept forever).",
    )
    retention_untouched_days: float = Field(
        180.0,
        ge=0,
        description="Any other record leaves the entity table after this many days without "
        "a change (0: kept forever).",
    )
    retention_sweep_interval_s: float = Field(
        10.0, gt=0, description="Period of the retention sweep (seconds)."
    )
    retention_sweep_batch: int = Field(
        50_000,
        ge=1,
        description="Records examined per retention sweep (the table is walked "
        "in slices, so one sweep never blocks the worker long).",
    )

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
        None,
        description="The org directory (CSV owner_id,manager_id,team,region,timezone): "
        "escalation, silences by team, business hours, notifier labels and KPI scopes; "
        "re-read when the file changes.",
    )
    alert_board_keep: int = Field(
        10_000, ge=0, description="Resolved alerts kept in memory for GET /alerts."
    )
    alert_board_keep_open: int = Field(
        10_000,
        ge=0,
        description="Open alerts kept in memory for GET /alerts (point alerts "
        "never resolve: the oldest are dropped beyond this; crm.alerts keeps them all).",
    )

    # --- KPIs ---------------------------------------------------------------------------
    kpi_catalog: Path | None = Field(
        None, description="KPI catalog YAML (default: the catalog shipped in streams/kpis/)."
    )
    kpi_directory: Path | None = Field(
        None,
        description="Deprecated: the same as org_directory_file (kept for compatibility; "
        "setting both to different files is refused).",
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
        description="Most of the worker's time KPI publication may take: a round pauses "
        "after each slice of work so that computing and sending snapshots takes at most this "
        "share (a large round takes longer, the events go through at the same speed).",
    )
    kpi_publish_recent_days: int = Field(
        14, ge=0, description="Day/week windows published this many days behind the watermark."
    )
    kpi_publish_recent_months: int = Field(
        36,
        ge=1,
        description="Month windows published (and kept for GET /kpis) this many months back "
        "from the watermark's month: publication work and memory are bounded whatever the "
        "event dates.",
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

    # --- process lifecycle --------------------------------------------------------------
    shutdown_grace_s: float = Field(
        10.0, gt=0, le=60,
        description="Seconds a stopping worker (signal or crash) gives Faust to stop cleanly "
        "before the process exits anyway (exit code 0 on a requested stop, 1 on a crash).",
    )  # fmt: skip
    fetch_stall_s: float = Field(
        60.0, gt=0,
        description="/health fails when the consumer's fetch loop has not turned for this "
        "long while partitions are assigned (a stuck worker).",
    )  # fmt: skip
    producer_request_timeout_s: float = Field(
        120.0, gt=0,
        description="A record not acknowledged by the broker within this time fails its "
        "shipment: the worker stops (exit code 1) and its input is replayed after a restart.",
    )  # fmt: skip

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

    @field_validator("min_event_time")
    @classmethod
    def _min_time_is_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("min_event_time needs an offset, e.g. 1990-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _records_fit_a_message(self) -> Settings:
        room = self.max_message_bytes - 16 * 1024
        for name in ("state_max_bytes", "max_event_bytes"):
            if getattr(self, name) > room:
                raise ValueError(f"{name} must be at most max_message_bytes - 16384")
        return self

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

    # --- CRM sources (streams/sources, docs/sources.md) ----------------------------------
    sources_file: Path | None = Field(
        None,
        description="YAML file of the CRM sources the worker reads (Debezium, Salesforce CDC, "
        "HubSpot webhooks, declarative mappings); none: only crm.events.",
    )
    source_ack_timeout_s: float = Field(
        4.0,
        gt=0,
        description="POST /sources/<id> answers 503 when Kafka has not acknowledged the "
        "request's events within this (HubSpot gives up after 5 s and retries).",
    )

    @model_validator(mode="after")
    def _one_org_directory(self) -> Settings:
        old, new = self.kpi_directory, self.org_directory_file
        if old is not None and new is not None and old != new:
            raise ValueError(
                "kpi_directory (deprecated) and org_directory_file name different files: "
                "set only org_directory_file"
            )
        return self

    @property
    def org_directory(self) -> Path | None:
        """The org directory file: ``org_directory_file``, else the deprecated
        ``kpi_directory``."""
        return self.org_directory_file or self.kpi_directory

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
    def ack_bound_s(self) -> float:
        """How long a writer waits for the broker's acknowledgement before the worker stops:
        a send and one retry. The producer's own timeout does not cover every case (a batch
        whose partition leader is known but cannot be reached, a frozen broker, may wait in
        the accumulator with no deadline)."""
        return 2 * self.producer_request_timeout_s

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
