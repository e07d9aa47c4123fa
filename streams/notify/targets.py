"""Webhook targets (``CRM_PULSE_WEBHOOKS_FILE``) and the closed registry of notifier kinds."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from streams.contracts.alerts import AlertEvent, AlertStatus, Severity


class NotifierKind(StrEnum):
    """Closed registry: a new kind is a new member plus its client in ``streams.notify.http``."""

    ALERTMANAGER = "alertmanager"
    WEBHOOK = "webhook"


class WebhookTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="Metric label.")
    url: HttpUrl
    secret: SecretStr = Field(min_length=16)
    statuses: frozenset[AlertStatus] = frozenset(AlertStatus)
    severities: frozenset[Severity] = frozenset(Severity)
    rules: frozenset[str] | None = Field(None, description="Rule ids; none = every rule.")
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at most.")
    timeout_s: float = Field(10.0, gt=0)

    def wants(self, alert: AlertEvent) -> bool:
        return (
            alert.notify
            and alert.status in self.statuses
            and alert.severity in self.severities
            and (self.rules is None or alert.rule_id in self.rules)
        )


class WebhooksFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    webhooks: list[WebhookTarget] = Field(default_factory=list)


def load_webhooks(path: Path | None) -> list[WebhookTarget]:
    """Targets of the YAML file; a missing setting means none. Names must be unique."""
    if path is None:
        return []
    data = yaml.safe_load(path.read_text()) or {}
    targets = WebhooksFile.model_validate(data).webhooks
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: webhook names must be unique")
    return targets
