"""Deprecated: the org directory is :mod:`streams.org` (one directory for alerting, the
notifier and the KPI scopes). Kept so that existing imports go on working."""

from __future__ import annotations

from streams.org import GLOBAL_ID, UNASSIGNED, OrgDirectory, ReloadingDirectory, parse_directory

__all__ = ["GLOBAL_ID", "UNASSIGNED", "OrgDirectory", "ReloadingDirectory", "parse_directory"]
