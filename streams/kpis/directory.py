"""The org directory: owner -> team (manager) -> region, reloaded when its file changes.

File formats (CSV with a header): ``owner,team,region`` or the Maven layout
``sales_agent,manager,regional_office``. Owners missing from the directory belong to team
and region ``unassigned``. A changed file is picked up on the next batch (no restart);
values already accumulated stay where they were counted.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streams.kpis.exceptions import DirectoryError

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
GLOBAL_ID = "all"
COLUMNS = (("owner", "team", "region"), ("sales_agent", "manager", "regional_office"))


@dataclass(frozen=True)
class OrgDirectory:
    teams: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[str, str] = field(default_factory=dict)

    def scopes(self, owner: str | None) -> tuple[str, ...]:
        """Scope keys (``kind:id``) an owner's facts count in: owner, team, region, global."""
        if not owner:
            return ("team:" + UNASSIGNED, "region:" + UNASSIGNED, "global:" + GLOBAL_ID)
        return (
            "owner:" + owner,
            "team:" + self.teams.get(owner, UNASSIGNED),
            "region:" + self.regions.get(owner, UNASSIGNED),
            "global:" + GLOBAL_ID,
        )


def parse_directory(text: str, origin: str = "<directory>") -> OrgDirectory:
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    for owner_col, team_col, region_col in COLUMNS:
        if {owner_col, team_col, region_col} <= set(header):
            break
    else:
        raise DirectoryError(f"{origin}: header {header} has none of the layouts {COLUMNS}")
    teams: dict[str, str] = {}
    regions: dict[str, str] = {}
    for row in reader:
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        owner = row.get(owner_col, "")
        if not owner:
            continue
        teams[owner] = row.get(team_col) or UNASSIGNED
        regions[owner] = row.get(region_col) or UNASSIGNED
    return OrgDirectory(teams, regions)


class ReloadingDirectory:
    """Reads the directory file again when its modification time changes.

    Checked at most every ``interval`` seconds of ``monotonic`` time (injectable). A file
    that becomes unreadable keeps the last good directory (logged).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.interval = interval
        self._monotonic = monotonic
        self._checked = float("-inf")
        self._mtime: int | None = None
        self.current = OrgDirectory()
        self.reloads = 0
        self.get()

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
                self.current = parse_directory(self.path.read_text(), str(self.path))
                self._mtime = mtime
                self.reloads += 1
                log.info("org directory %s loaded: %d owner(s)", self.path, len(self.current.teams))
        except (OSError, DirectoryError) as exc:
            log.error("org directory %s not reloaded, keeping the last one: %s", self.path, exc)
        return self.current
