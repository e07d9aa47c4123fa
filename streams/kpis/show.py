"""KPI snapshots as a readable terminal table (``crm-pulse kpis show``, the verb is
:mod:`streams.commands.kpis`): formatting, filtering and ordering, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

UNIT_FORMATS = {
    "ratio": "{:.1%}",
    "currency": "{:,.2f}",
    "days": "{:g} d",
    "count": "{:g}",
    "minutes": "{:.1f} min",
}


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return UNIT_FORMATS.get(unit, "{}").format(value)


def rows_of(snapshots: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for s in snapshots:
        kpi = s["kpi"] + "".join(f"[{v}]" for _, v in sorted(s.get("dimensions", {}).items()))
        start, end = s["window"]["start"][:10], s["window"]["end"][:10]
        rows.append(
            [
                kpi,
                f"{s['scope']['kind']}:{s['scope']['id']}",
                s["window"]["kind"],
                f"{start}..{end}",
                fmt_value(s["value"], s["unit"]),
                f"{s['trust']['value']:.2f}" + (" UNTRUSTED" if s.get("untrusted") else ""),
                "; ".join(
                    f"{r['name']} {r['value']:.2f}" for r in s["trust"]["reasons"] if r["value"] < 1
                ),
            ]
        )
    return rows


def render(snapshots: Sequence[Mapping[str, Any]]) -> str:
    header = ["KPI", "SCOPE", "WINDOW", "DAYS", "VALUE", "TRUST", "WHY LOWER"]
    rows = rows_of(snapshots)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def matches(s: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
    checks = {
        "kpi": s["kpi"],
        "scope_kind": s["scope"]["kind"],
        "scope_id": s["scope"]["id"],
        "window": s["window"]["kind"],
    }
    return all(checks[k] == v for k, v in filters.items())


def select(
    snapshots: Iterable[Mapping[str, Any]], filters: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The snapshots matching ``filters``, ordered by KPI, scope, window kind and start."""
    found = [dict(s) for s in snapshots if matches(s, filters)]
    found.sort(
        key=lambda s: (
            s["kpi"],
            s["scope"]["kind"],
            s["scope"]["id"],
            s["window"]["kind"],
            s["window"]["start"],
        )
    )
    return found
