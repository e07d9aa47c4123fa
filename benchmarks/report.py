"""Pure parts of the benchmark: percentiles, medians, ratios, the table and the JSON schema.

No Kafka here: everything takes plain numbers and dicts, so it is unit-tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_ID = "crm-pulse-bench/2"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (the "linear" method of NumPy): rank ``(n - 1) * q / 100`` of the sorted values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _p99s(latency: dict[str, Any]) -> str:
    """Each latency run's p99, the median's being the one shown above."""
    runs = latency.get("runs") or []
    return " / ".join(_fmt(r.get("p99_ms"), ",.0f", "") for r in runs) or "-"


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95, p99 and max of latencies in milliseconds (``None`` when empty)."""
    if not latencies_ms:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p95_ms": round(percentile(latencies_ms, 95), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "max_ms": round(max(latencies_ms), 2),
    }


def slow_buckets(
    rows: list[tuple[float, float]], bucket_ms: float, above_ms: float
) -> list[tuple[float, float]]:
    """``(sent offset ms, latency ms)`` -> ``(bucket start s, worst latency ms)`` of the
    buckets whose worst latency is above ``above_ms``, in time order."""
    worst: dict[int, float] = {}
    for sent, latency in rows:
        k = int(sent // bucket_ms)
        worst[k] = max(worst.get(k, 0.0), latency)
    return [(k * bucket_ms / 1000, v) for k, v in sorted(worst.items()) if v > above_ms]


def run_figure(
    *, expected: int, processed: int, seconds: float, budget_s: float, **extra: Any
) -> dict[str, Any]:
    """One measured run: events/s over ``seconds`` (first to last event processed)."""
    finished = processed >= expected
    eps = processed / seconds if seconds > 0 else 0.0
    return {
        "expected": expected,
        "processed": processed,
        "seconds": round(seconds, 3),
        "eps": round(eps, 1),
        "finished": finished,
        "budget_s": budget_s,
        **extra,
    }


def describe_run(run: Mapping[str, Any]) -> str:
    """One line for a run, saying plainly when it did not finish within its budget."""
    if run["finished"]:
        return f"{run['processed']} events, {run['eps']:,.0f} ev/s over {run['seconds']:.2f} s"
    return (
        f"did not finish in {run['budget_s']:g} s, processed {run['processed']} of "
        f"{run['expected']} events = {run['eps']:,.0f} ev/s"
    )


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50) if values else None


def median_eps(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """Median events/s over repeated runs (a run that did not finish counts with the rate it
    reached within its budget)."""
    return median([float(run["eps"]) for run in runs])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 3)


def _fmt(value: Any, spec: str = ",.0f", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MiB"


_EMPTY: dict[str, Any] = {"events": 0, "runs": [], "median_eps": None}


def format_table(result: Mapping[str, Any]) -> str:
    """The one table of a run: events/s, ratios, latency percentiles and memory, with CRM
    Pulse on the peer's job (parity) and on the full pack side by side."""
    limit, full, peer = result["limit"], result["pulse"], result["peer"]
    floor = result.get("floor") or _EMPTY
    parity = result.get("pulse_parity") or _EMPTY
    latency = full.get("latency") or {}
    cols = (limit, floor, parity, full, peer)

    def eps(section: Mapping[str, Any]) -> float | None:
        value = section["median_eps"]
        return None if value is None else float(value)

    def ratios_to(base: Mapping[str, Any], first: int) -> tuple[str, ...]:
        cells = ["" for _ in cols]
        for i, col in enumerate(cols):
            if i < first:
                continue
            cells[i] = ("1.00" if eps(col) else "-") if col is base else (
                _fmt(ratio(eps(col), eps(base)), ".3f"))  # fmt: skip
        return tuple(cells)

    rate = latency.get("target_eps")
    rows: list[tuple[str, ...]] = [
        ("events/s (median)", *(_fmt(eps(c)) for c in cols)),
        ("ratio to limit", *ratios_to(limit, 0)),
        ("ratio to floor", *ratios_to(floor, 1)),
        ("ratio to peer", *ratios_to(peer, 2)),
        ("events measured", *(str(c["events"]) for c in cols)),
        ("runs finished", *(_finished(c) for c in cols)),
        ("latency offered load", "", "", "", _fmt(rate, ",.0f", " ev/s"), ""),
        ("alert latency p50", "", "", "", _fmt(latency.get("p50_ms"), ",.1f", " ms"), ""),
        ("alert latency p95", "", "", "", _fmt(latency.get("p95_ms"), ",.1f", " ms"), ""),
        ("alert latency p99", "", "", "", _fmt(latency.get("p99_ms"), ",.1f", " ms"), ""),
        ("latency runs (p99)", "", "", "", _p99s(latency), ""),
        ("peak RSS", "", "", *(_mib(c.get("peak_rss_bytes")) for c in cols[2:])),
        (
            "state bytes/deal",
            "",
            "",
            *(_fmt(c.get("state_bytes_per_deal"), ",.0f", " B") for c in cols[2:]),
        ),
    ]
    header = (
        "",
        "limit (aiokafka)",
        "floor (Faust)",
        "CRM Pulse parity",
        "CRM Pulse full",
        f"peer ({peer.get('name', 'peer')})",
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


#: The targets of the worker (issue #14): (label, measured, bound, higher is better).
def targets(result: Mapping[str, Any]) -> list[tuple[str, float | None, float, bool]]:
    r = result["ratios"]
    full, peer = result["pulse"], result["peer"]
    latency = full.get("latency") or {}
    rss, peer_rss = full.get("peak_rss_bytes"), peer.get("peak_rss_bytes")
    return [
        ("parity events/s / peer events/s", r.get("parity_to_peer"), 1.5, True),
        ("full pack events/s / peer events/s", r.get("pulse_to_peer"), 1.0, True),
        ("p99 event -> alert (ms) at the offered load", latency.get("p99_ms"), 100.0, False),
        (
            "full pack peak RSS / peer peak RSS",
            ratio(float(rss), float(peer_rss)) if rss and peer_rss else None,
            1.0,
            False,
        ),
        ("state bytes per deal (full pack)", full.get("state_bytes_per_deal"), 1024.0, False),
    ]


def format_targets(result: Mapping[str, Any]) -> str:
    """One line per target: measured, bound, met or missed (by how much)."""
    lines = ["targets:"]
    for label, value, bound, higher in targets(result):
        if value is None:
            verdict = "not measured"
        elif (value >= bound) if higher else (value <= bound):
            verdict = "met"
        else:
            verdict = f"missed by {abs(value - bound) / bound:.0%}"
        shown = "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        sign = ">=" if higher else "<="
        lines.append(f"  {label}: {shown} (target {sign} {bound:g}): {verdict}")
    return "\n".join(lines)


def _finished(section: Mapping[str, Any]) -> str:
    runs = section.get("runs") or []
    return f"{sum(1 for r in runs if r['finished'])}/{len(runs)}"


_RUN = {
    "type": "object",
    "required": ["expected", "processed", "seconds", "eps", "finished", "budget_s"],
    "properties": {
        "expected": {"type": "integer", "minimum": 0},
        "processed": {"type": "integer", "minimum": 0},
        "seconds": {"type": "number", "minimum": 0},
        "eps": {"type": "number", "minimum": 0},
        "finished": {"type": "boolean"},
        "budget_s": {"type": "number", "minimum": 0},
    },
}
_NUM_OR_NULL = {"type": ["number", "null"]}
#: Ratios of the result: ``pulse`` is CRM Pulse on the full pack, ``parity`` on the peer's job.
RATIOS = (
    "pulse_to_limit", "pulse_to_floor", "pulse_to_peer",
    "parity_to_limit", "parity_to_floor", "parity_to_peer",
    "peer_to_limit", "peer_to_floor", "floor_to_limit",
)  # fmt: skip
_SECTION = {
    "type": "object",
    "required": ["events", "runs", "median_eps"],
    "properties": {
        "events": {"type": "integer", "minimum": 0},
        "runs": {"type": "array", "items": _RUN},
        "median_eps": _NUM_OR_NULL,
    },
}

#: JSON Schema of ``benchmarks/results/<timestamp>.json``.
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CRM Pulse benchmark result",
    "type": "object",
    "required": [
        "schema",
        "started_at",
        "command",
        "machine",
        "config",
        "limit",
        "floor",
        "pulse",
        "pulse_parity",
        "peer",
        "ratios",
    ],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "started_at": {"type": "string"},
        "command": {"type": "string"},
        "machine": {"type": "object", "required": ["cpus", "under_load"]},
        "config": {"type": "object", "required": ["events", "repeat", "rules", "kpis"]},
        "limit": _SECTION,
        "floor": _SECTION,
        "pulse": {
            "allOf": [_SECTION],
            "required": ["latency", "peak_rss_bytes", "state_bytes_per_deal"],
            "properties": {
                "latency": {
                    "type": "object",
                    "required": [
                        "target_eps",
                        "rate_source",
                        "offered_eps",
                        "count",
                        "p50_ms",
                        "p95_ms",
                        "p99_ms",
                    ],
                    "properties": {
                        "target_eps": {"type": "number", "exclusiveMinimum": 0},
                        "rate_source": {"type": "string"},
                        "offered_eps": {"type": "number", "minimum": 0},
                        "p99_ms": _NUM_OR_NULL,
                    },
                },
                "peak_rss_bytes": {"type": ["integer", "null"]},
                "state_bytes_per_deal": _NUM_OR_NULL,
            },
        },
        "pulse_parity": {
            "allOf": [_SECTION],
            "required": ["mode", "peak_rss_bytes", "state_bytes_per_deal"],
            "properties": {
                "mode": {"const": "parity"},
                "peak_rss_bytes": {"type": ["integer", "null"]},
                "state_bytes_per_deal": _NUM_OR_NULL,
            },
        },
        "peer": {"allOf": [_SECTION], "required": ["name"]},
        "ratios": {
            "type": "object",
            "required": list(RATIOS),
            "properties": {name: _NUM_OR_NULL for name in RATIOS},
        },
    },
}


def ratios(
    limit: float | None,
    pulse: float | None,
    peer: float | None,
    *,
    floor: float | None = None,
    parity: float | None = None,
) -> dict[str, Any]:
    """Every ratio of :data:`RATIOS` (``None`` where a figure is missing)."""
    figures = {"limit": limit, "pulse": pulse, "peer": peer, "floor": floor, "parity": parity}
    out = {}
    for name in RATIOS:
        top, _, bottom = name.partition("_to_")
        out[name] = ratio(figures[top], figures[bottom])
    return out
