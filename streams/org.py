"""The one org directory: owner -> manager, team, region, timezone.

Alerting (escalation to the manager, silences by team, business hours in the owner's
timezone), the notifier's labels and the KPI scopes (owner, team, region, global) all read
it. One setting names its file, ``Settings.org_directory_file``
(``CRM_PULSE_ORG_DIRECTORY_FILE``); the worker re-reads the file when it changes
(:class:`ReloadingDirectory`, no restart).

The format is a CSV with the header ``owner_id,manager_id,team,region,timezone`` (empty
cells allowed). Read as well, for compatibility (deprecated): YAML
(``{owners: {rep-001: {manager: mgr-1, team: west-1, region: West, timezone: ...}}}``),
the CSV header ``owner,team,region``, and the Maven dataset's
``sales_agent,manager,regional_office`` (team and manager: the manager). A missing file is
an empty directory: owners belong to team and region ``unassigned`` and an escalation has
no target (``escalated_to`` null, said in the alert's evidence).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streams.errors import PulseError

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
GLOBAL_ID = "all"
#: The header of the directory CSV.
HEADER = ("owner_id", "manager_id", "team", "region", "timezone")
#: Older CSV layouts still read: (owner, manager, team, region) columns, ``None``: absent.
LEGACY_LAYOUTS: tuple[tuple[str, str | None, str, str], ...] = (
    ("owner", None, "team", "region"),
    ("sales_agent", "manager", "manager", "regional_office"),
)
#: Owners whose scope keys a directory keeps ready (cleared beyond: any owner id may come).
MAX_CACHED_SCOPES = 100_000
LAYOUTS = (("owner_id", "manager_id", "team", "region"), *LEGACY_LAYOUTS)


class DirectoryError(PulseError):
    """The org directory file cannot be read (the message names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class Person:
    manager: str | None = None
    team: str | None = None
    region: str | None = None
    timezone: str | None = None


class OrgDirectory:
    """An immutable directory (one reading of the file)."""

    def __init__(self, people: Mapping[str, Person] | None = None) -> None:
        self._people: Mapping[str, Person] = dict(people) if people else {}
        self._scopes: dict[str, tuple[str, ...]] = {}

    @property
    def people(self) -> Mapping[str, Person]:
        return self._people

    def get(self) -> OrgDirectory:
        """The directory as of now (itself; a :class:`ReloadingDirectory` re-reads)."""
        return self

    def __len__(self) -> int:
        return len(self.people)

    def person(self, owner_id: str | None) -> Person | None:
        return self.people.get(owner_id or "")

    def manager_of(self, owner_id: str | None) -> str | None:
        person = self.person(owner_id)
        return person.manager if person else None

    def team_of(self, owner_id: str | None) -> str | None:
        person = self.person(owner_id)
        return person.team if person else None

    def region_of(self, owner_id: str | None) -> str | None:
        person = self.person(owner_id)
        return person.region if person else None

    def timezone_of(self, owner_id: str | None) -> str | None:
        person = self.person(owner_id)
        return person.timezone if person else None

    def scopes(self, owner: str | None) -> tuple[str, ...]:
        """Scope keys (``kind:id``) an owner's KPI facts count in: owner, team, region,
        global (``unassigned`` team and region for an owner the directory lacks)."""
        if not owner:
            return ("team:" + UNASSIGNED, "region:" + UNASSIGNED, "global:" + GLOBAL_ID)
        snapshot = self.get()
        found = snapshot._scopes.get(owner)
        if found is None:
            person = snapshot._people.get(owner)
            team = (person.team if person else None) or UNASSIGNED
            region = (person.region if person else None) or UNASSIGNED
            found = ("owner:" + owner, "team:" + team, "region:" + region, "global:" + GLOBAL_ID)
            if len(snapshot._scopes) >= MAX_CACHED_SCOPES:  # owner ids come from events
                snapshot._scopes.clear()
            snapshot._scopes[owner] = found
        return found

    @classmethod
    def load(cls, path: Path | None) -> OrgDirectory:
        """Read a directory file (CSV, or YAML by its suffix); a missing file: empty.
        Raises :class:`DirectoryError` when the file cannot be read."""
        if path is None or not path.exists():
            return cls()
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise DirectoryError(f"{path}: {exc}") from exc
        if path.suffix.lower() in (".yaml", ".yml"):
            return parse_yaml(text, str(path))
        return parse_directory(text, str(path))


def parse_directory(text: str, origin: str = "<directory>") -> OrgDirectory:
    """A directory from CSV text (the header says which layout)."""
    reader = csv.DictReader(io.StringIO(text))
    header = {h.strip() for h in (reader.fieldnames or ()) if h}
    layout = next((lay for lay in LAYOUTS if {lay[0], lay[2], lay[3]} <= header), None)
    if layout is None:
        raise DirectoryError(
            f"{origin}: header {sorted(header)} is none of {HEADER} "
            f"(or the older {[lay[0:1] + lay[2:] for lay in LEGACY_LAYOUTS]})"
        )
    owner_col, manager_col, team_col, region_col = layout
    people: dict[str, Person] = {}
    for row in reader:
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        owner = cells.get(owner_col, "")
        if not owner:
            continue
        people[owner] = Person(
            manager=_opt(cells.get(manager_col)) if manager_col else None,
            team=_opt(cells.get(team_col)), region=_opt(cells.get(region_col)),
            timezone=_opt(cells.get("timezone")),
        )  # fmt: skip
    return OrgDirectory(people)


def parse_yaml(text: str, origin: str = "<directory>") -> OrgDirectory:
    """A directory from the older YAML layout (``owners: {id: {manager, team, ...}}``)."""
    try:
        data: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{origin}: {exc}") from exc
    owners = data.get("owners", {}) if isinstance(data, dict) else {}
    if not isinstance(owners, dict):
        raise DirectoryError(f"{origin}: 'owners' is not a mapping")
    return OrgDirectory({
        str(owner): Person(
            manager=_opt(info.get("manager")), team=_opt(info.get("team")),
            region=_opt(info.get("region")), timezone=_opt(info.get("timezone")),
        )
        for owner, info in owners.items() if isinstance(info, dict)
    })  # fmt: skip


class ReloadingDirectory(OrgDirectory):
    """The directory of a file, read again when the file's modification time changes.

    Checked at most every ``interval`` seconds of ``monotonic`` time (injectable). A file
    that becomes unreadable keeps the last good directory (logged). Every lookup sees the
    current reading; :meth:`get` returns it (one consistent reading for a whole batch).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.path = path
        self.interval = interval
        self._monotonic = monotonic
        self._checked = float("-inf")
        self._mtime: int | None = None
        self.current = OrgDirectory()
        self.reloads = 0
        self._error: str | None = None
        self.get()

    @property
    def people(self) -> Mapping[str, Person]:
        return self.get().people

    def get(self) -> OrgDirectory:
        if self.path is None:
            return self.current
        now = self._monotonic()
        if now - self._checked < self.interval:
            return self.current
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self.current = OrgDirectory.load(self.path)
                self._mtime = mtime
                self.reloads += 1
                log.info("org directory %s loaded: %d owner(s)", self.path, len(self.current))
            self._error = None
        except (OSError, DirectoryError) as exc:
            if str(exc) != self._error:  # said once, not at every check
                self._error = str(exc)
                log.error("org directory %s not (re)loaded, keeping the last one: %s",
                          self.path, exc)  # fmt: skip
        return self.current


def _opt(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None
