"""The one org directory: one format (and the older ones), one setting, live reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.org import DirectoryError, OrgDirectory, ReloadingDirectory, parse_directory
from streams.settings import Settings


def test_the_directory_csv_feeds_alerting_and_kpi_scopes() -> None:
    org = parse_directory(
        "owner_id,manager_id,team,region,timezone\nrep-1,mgr-1,west,West,Europe/Paris\nrep-2,,,,\n"
    )
    assert org.manager_of("rep-1") == "mgr-1" and org.team_of("rep-1") == "west"
    assert org.region_of("rep-1") == "West" and org.timezone_of("rep-1") == "Europe/Paris"
    assert org.scopes("rep-1") == ("owner:rep-1", "team:west", "region:West", "global:all")
    assert org.scopes("rep-2")[1:3] == ("team:unassigned", "region:unassigned")
    assert org.scopes("nobody")[1:3] == ("team:unassigned", "region:unassigned")
    assert org.scopes(None) == ("team:unassigned", "region:unassigned", "global:all")
    assert org.manager_of("rep-2") is None and org.manager_of(None) is None


@pytest.mark.parametrize(
    ("text", "manager"),
    [
        ("owner,team,region\nann,mia,West\n", None),
        ("sales_agent,manager,regional_office\nann,mia,West\n", "mia"),  # the Maven layout
    ],
)
def test_older_csv_layouts_are_still_read(text: str, manager: str | None) -> None:
    org = parse_directory(text)
    assert org.scopes("ann") == ("owner:ann", "team:mia", "region:West", "global:all")
    assert org.manager_of("ann") == manager


def test_yaml_is_still_read_and_a_bad_file_says_what_is_wrong(tmp_path: Path) -> None:
    yaml_file = tmp_path / "org.yaml"
    yaml_file.write_text("owners:\n  rep-2: {manager: mgr-2, team: east, region: East}\n")
    org = OrgDirectory.load(yaml_file)
    assert org.manager_of("rep-2") == "mgr-2" and org.scopes("rep-2")[1] == "team:east"
    bad = tmp_path / "bad.csv"
    bad.write_text("no,header,here\n")
    with pytest.raises(DirectoryError, match=r"bad\.csv: header .* is none of"):
        OrgDirectory.load(bad)
    assert len(OrgDirectory.load(tmp_path / "missing.csv")) == 0


def test_every_lookup_of_a_reloading_directory_sees_the_file_as_it_is_now(
    tmp_path: Path,
) -> None:
    path = tmp_path / "org.csv"
    path.write_text("owner_id,manager_id,team,region,timezone\nrep-1,mgr-1,west,West,\n")
    ticks = iter(range(100))
    org = ReloadingDirectory(path, interval=1.0, monotonic=lambda: float(next(ticks)))
    assert org.manager_of("rep-1") == "mgr-1" and org.people["rep-1"].team == "west"
    path.write_text("owner_id,manager_id,team,region,timezone\nrep-1,mgr-9,east,East,\n")
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    assert org.manager_of("rep-1") == "mgr-9"  # escalation follows the file, no restart
    assert org.team_of("rep-1") == "east"
    assert org.scopes("rep-1")[1] == "team:east"
    assert org.reloads == 2


def test_one_setting_names_the_directory_and_the_old_one_still_works(tmp_path: Path) -> None:
    new, old = tmp_path / "org.csv", tmp_path / "teams.csv"
    assert Settings(org_directory_file=new).org_directory == new
    assert Settings(kpi_directory=old).org_directory == old  # deprecated, still honoured
    assert Settings(org_directory_file=new, kpi_directory=new).org_directory == new
    with pytest.raises(ValidationError, match="set only org_directory_file"):
        Settings(org_directory_file=new, kpi_directory=old)
    assert Settings().org_directory is None
