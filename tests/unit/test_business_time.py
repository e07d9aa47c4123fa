"""Working-time arithmetic across evenings, weekends and timezones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.business_time import add_business_time
from streams.org import OrgDirectory


def test_within_one_day() -> None:
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday
    assert add_business_time(start, timedelta(hours=3)) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


def test_outside_hours_starts_at_next_opening() -> None:
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert add_business_time(saturday, timedelta(hours=1)) == datetime(
        2026, 3, 9, 10, 0, tzinfo=UTC
    )


def test_owner_timezone() -> None:
    start = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 17:00 in Paris
    due = add_business_time(start, timedelta(hours=2), timezone="Europe/Paris")
    # 1 h Monday until 18:00 Paris, 1 h Tuesday from 09:00 Paris (08:00 UTC)
    assert due == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="after day_start"):
        add_business_time(datetime(2026, 3, 2, tzinfo=UTC), timedelta(1), day_start="18:00",
                          day_end="09:00")  # fmt: skip


def test_org_directory_csv_and_yaml(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    csv_file = folder / "org.csv"
    csv_file.write_text("owner_id,manager_id,team,region,timezone\nrep-1,mgr-1,west,West,\n")
    org = OrgDirectory.load(csv_file)
    assert org.manager_of("rep-1") == "mgr-1" and org.timezone_of("rep-1") is None
    yaml_file = folder / "org.yaml"
    yaml_file.write_text("owners:\n  rep-2: {manager: mgr-2, team: east}\n")
    assert OrgDirectory.load(yaml_file).team_of("rep-2") == "east"
    assert OrgDirectory.load(folder / "missing.csv").manager_of("rep-1") is None
