"""Pure parts of the benchmark: percentiles, medians, ratios, the table and the JSON schema.

No Kafka here: everything takes plain numbers and dicts, so it is unit-tested directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_ID = "crm-pulse-bench/1"


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


def format_table(result: Mapping[str, Any]) -> str:
    """The one table of a run: events/s, ratios, latency percentiles and memory."""
    limit, pulse, peer = result["limit"], result["pulse"], result["peer"]
    floor = result.get("floor") or {"events": 0, "runs": [], "median_eps": None}
    ratios = result["ratios"]
    latency = pulse.get("latency") or {}
    rows: list[tuple[str, ...]] = [
        (
            "events/s (median)",
            _fmt(limit["median_eps"]),
            _fmt(floor["median_eps"]),
            _fmt(pulse["median_eps"]),
            _fmt(peer["median_eps"]),
        ),
        (
            "ratio to limit",
            "1.00" if limit["median_eps"] else "-",
            _fmt(ratio(floor["median_eps"], limit["median_eps"]), ".3f"),
            _fmt(ratios["pulse_to_limit"], ".3f"),
            _fmt(ratios["peer_to_limit"], ".3f"),
        ),
        (
            "ratio to floor",
            "",
            "1.00" if floor["median_eps"] else "-",
            _fmt(ratio(pulse["median_eps"], floor["median_eps"]), ".3f"),
            _fmt(ratio(peer["median_eps"], floor["median_eps"]), ".3f"),
        ),
        (
            "ratio to peer",
            "",
            "",
            _fmt(ratios["pulse_to_peer"], ".3f"),
            "1.00" if peer["median_eps"] else "-",
        ),
        (
            "events measured",
            str(limit["events"]),
            str(floor["events"]),
            str(pulse["events"]),
            str(peer["events"]),
        ),
        ("runs finished", _finished(limit), _finished(floor), _finished(pulse), _finished(peer)),
        ("alert latency p50", "", "", _fmt(latency.get("p50_ms"), ",.1f", " ms"), ""),
        ("alert latency p95", "", "", _fmt(latency.get("p95_ms"), ",.1f", " ms"), ""),
        ("alert latency p99", "", "", _fmt(latency.get("p99_ms"), ",.1f", " ms"), ""),
        (
            "peak RSS",
            "",
            "",
            _mib(pulse.get("peak_rss_bytes")),
            _mib(peer.get("peak_rss_bytes")),
        ),
        (
            "state bytes/deal",
            "",
            "",
            _fmt(pulse.get("state_bytes_per_deal"), ",.0f", " B"),
            _fmt(peer.get("state_bytes_per_deal"), ",.0f", " B"),
        ),
    ]
    header = (
        "",
        "limit (aiokafka)",
        "floor (Faust)",
        "CRM Pulse",
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
        "pulse",
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
                    "required": ["offered_eps", "count", "p50_ms", "p95_ms", "p99_ms"],
                },
                "peak_rss_bytes": {"type": ["integer", "null"]},
                "state_bytes_per_deal": _NUM_OR_NULL,
            },
        },
        "peer": {"allOf": [_SECTION], "required": ["name"]},
        "ratios": {
            "type": "object",
            "required": ["pulse_to_limit", "pulse_to_peer", "peer_to_limit"],
            "properties": {
                "pulse_to_limit": _NUM_OR_NULL,
                "pulse_to_peer": _NUM_OR_NULL,
                "peer_to_limit": _NUM_OR_NULL,
            },
        },
    },
}


def ratios(limit: float | None, pulse: float | None, peer: float | None) -> dict[str, Any]:
    return {
        "pulse_to_limit": ratio(pulse, limit),
        "pulse_to_peer": ratio(pulse, peer),
        "peer_to_limit": ratio(peer, limit),
    }
