"""The org directory: owner -> manager, team, region, timezone (escalation, silences).

Loaded from a CSV (header ``owner_id,manager_id,team,region,timezone``) or a YAML file
(``{owners: {rep-001: {manager: mgr-1, team: west-1, region: West, timezone: ...}}}``)
named by ``Settings.org_directory_file``. Missing file -> empty directory (no escalation
target: the alert escalates with ``escalated_to`` null and says so in its evidence).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Person:
    manager: str | None = None
    team: str | None = None
    region: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class OrgDirectory:
    people: Mapping[str, Person] = field(default_factory=dict)

    def manager_of(self, owner_id: str | None) -> str | None:
        person = self.people.get(owner_id or "")
        return person.manager if person else None

    def team_of(self, owner_id: str | None) -> str | None:
        person = self.people.get(owner_id or "")
        return person.team if person else None

    def timezone_of(self, owner_id: str | None) -> str | None:
        person = self.people.get(owner_id or "")
        return person.timezone if person else None

    @classmethod
    def load(cls, path: Path | None) -> OrgDirectory:
        if path is None or not path.exists():
            return cls()
        if path.suffix.lower() in (".yaml", ".yml"):
            data: Any = yaml.safe_load(path.read_text()) or {}
            owners = data.get("owners", {}) if isinstance(data, dict) else {}
            return cls({
                str(owner): Person(
                    manager=_opt(info.get("manager")), team=_opt(info.get("team")),
                    region=_opt(info.get("region")), timezone=_opt(info.get("timezone")),
                )
                for owner, info in owners.items() if isinstance(info, dict)
            })  # fmt: skip
        with path.open(newline="") as handle:
            return cls({
                row["owner_id"].strip(): Person(
                    manager=_opt(row.get("manager_id")), team=_opt(row.get("team")),
                    region=_opt(row.get("region")), timezone=_opt(row.get("timezone")),
                )
                for row in csv.DictReader(handle) if (row.get("owner_id") or "").strip()
            })  # fmt: skip


def _opt(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
