"""Errors of the KPI package."""

from __future__ import annotations

from streams.errors import PulseError


class KpiError(PulseError):
    """Base class of every KPI error."""


class CatalogError(KpiError):
    """The KPI catalog file is invalid (message names the file and the problem)."""


class DirectoryError(KpiError):
    """The org directory file cannot be read."""


class ReplayError(KpiError):
    """A replay folder is not in the expected layout."""
