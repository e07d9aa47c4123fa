"""``crm-pulse kpis show``: KPI snapshots as a readable terminal table."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.settings import Settings

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


def from_worker(url: str, filters: Mapping[str, str]) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode(filters)
    with urllib.request.urlopen(f"{url.rstrip('/')}/kpis?{query}", timeout=10) as resp:
        body = json.loads(resp.read())
    return list(body["snapshots"])


async def from_topic(
    settings: Settings, topic: str, filters: Mapping[str, str], settle: float = 1.5
) -> list[dict[str, Any]]:
    """The latest snapshot per key on the (compacted) KPI topic."""
    from streams.runtime.clients import new_consumer

    consumer = new_consumer(
        settings, "kpis-show", topic, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    latest: dict[bytes, dict[str, Any]] = {}
    quiet = time.monotonic()
    try:
        while time.monotonic() - quiet < settle:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    quiet = time.monotonic()
                    if record.key is None:
                        continue
                    if record.value is None:
                        latest.pop(record.key, None)
                    else:
                        latest[record.key] = json.loads(record.value)
    finally:
        await consumer.stop()
    found = [s for s in latest.values() if matches(s, filters)]
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
