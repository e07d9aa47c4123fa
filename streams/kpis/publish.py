"""Snapshots of a scope's windows: which windows a round publishes, and their bodies.

:func:`snapshots` builds ``KpiSnapshot`` bodies from a scope's decoded day buckets
(:class:`~streams.kpis.store.ScopeData`), skipping values whose signature did not change
since they were last published.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from math import isfinite
from typing import Any

from streams.contracts.kpis import SCHEMA_VERSION
from streams.kpis.catalog import Catalog
from streams.kpis.compute import COMPUTERS, Context, freshness, sample_factor
from streams.kpis.store import ScopeData
from streams.kpis.windows import (
    TUMBLING,
    Window,
    current,
    day_of,
    dt_of,
    months_back,
    tumbling_between,
)


def windows_to_publish(
    kinds: Iterable[str],
    first_day: int,
    dirty_from: int,
    watermark_day: int,
    recent_days: int,
    recent_months: int = 36,
) -> list[Window]:
    """Windows whose value may have changed since ``dirty_from``.

    Month windows from the dirty day on, within the ``recent_months`` months up to the
    watermark's; day and week windows only within ``recent_days`` before the watermark
    (older ones stay in the table and on the topic), and the rolling windows ending at the
    watermark. At most ``recent_months + recent_days / 7 + recent_days + 5`` windows,
    however far apart the dates of the facts are.
    """
    start = max(first_day, min(dirty_from, watermark_day))
    out: list[Window] = []
    for kind in kinds:
        if kind in ("rolling7", "rolling30", "all"):
            out.append(current(kind, watermark_day))
        elif kind == "month":
            horizon = months_back(watermark_day, max(recent_months, 1) - 1)
            out.extend(tumbling_between(kind, max(start, horizon), watermark_day))
        else:
            out.extend(
                tumbling_between(kind, max(start, watermark_day - recent_days), watermark_day)
            )
    return out


def finite_or_none(value: float | None) -> float | None:
    """A KPI value as published: ``None`` (undefined) rather than NaN or infinity."""
    return value if value is None or isfinite(value) else None


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


#: Signatures of what was last published, per tumbling or rolling window ``(kind, start)``:
#: ``{(kpi, scope, dimensions): signature}`` (forgetting a window drops one entry).
Signatures = dict[tuple[str, int], dict[tuple[Any, ...], tuple[Any, ...]]]


def snapshots(
    data: ScopeData,
    windows: Iterable[Window],
    catalog: Catalog,
    context: Context,
    *,
    watermark: datetime,
    trust_floor: float,
    computed_at: datetime,
    signatures: Signatures | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(key, KpiSnapshot body)`` pairs (JSON-ready dicts, validated by the contract's
    tests) of ``windows``; a value whose signature in ``signatures`` is unchanged is
    skipped (already published), the others are recorded there.

    Bodies of one call share their read-only parts (scope, window, trust reasons): the
    published snapshots are never modified, only replaced.
    """
    scope_key = data.scope
    kind, _, scope_id = scope_key.partition(":")
    scope = {"kind": kind, "id": scope_id}
    watermark_day = day_of(watermark.timestamp())
    age = None if data.last_event_day is None else max(0, watermark_day - data.last_event_day)
    wm, now = iso(watermark), iso(computed_at)
    fresh_days = catalog.params.fresh_days
    kpis = [(kpi, COMPUTERS[kpi.id]) for kpi in catalog.kpis]
    # trust reasons repeat across windows and KPIs: each distinct one is built once
    completeness_reasons: dict[tuple[float, str], tuple[float, dict[str, Any]]] = {}
    sample_reasons: dict[tuple[int | None, int | None], tuple[float, dict[str, Any]]] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for w in windows:
        flow = data.flow(w.start, w.end)
        state = data.state_at(min(w.end - 1, watermark_day))
        start = iso(dt_of(w.start))
        window = {"kind": w.kind, "start": start, "end": iso(dt_of(w.end))}
        is_open = w.end > watermark_day
        window_age = age if is_open else None
        fresh, fresh_detail = freshness(age, fresh_days, is_open)
        fresh = round(fresh, 6)
        fresh_reason = {"name": "freshness", "value": fresh, "detail": fresh_detail}
        # the key as snapshot_key builds it: kpi|scope|window[|start][|dim=value]
        key_tail = (
            f"|{scope_key}|{w.kind}|{start[:10]}"
            if w.kind in TUMBLING
            else f"|{scope_key}|{w.kind}"
        )
        seen = None if signatures is None else signatures.setdefault((w.kind, w.start), {})
        for kpi, computer in kpis:
            for value in computer(flow, state, context):
                dims = value.dimensions
                completeness, detail = value.completeness, value.completeness_detail
                if seen is not None:
                    # everything the published body depends on, cheap to compare
                    ident = (kpi.id, scope_key, tuple(dims.items()))
                    sig = (
                        w.end,
                        value.value,
                        value.sample,
                        completeness,
                        detail,
                        window_age,
                        is_open,
                    )
                    if seen.get(ident) == sig:
                        continue
                    seen[ident] = sig
                c = completeness_reasons.get((completeness, detail))
                if c is None:
                    c = completeness_reasons[(completeness, detail)] = _reason(
                        "completeness", completeness, detail
                    )
                n = sample_reasons.get((value.sample, kpi.min_sample))
                if n is None:
                    n = sample_reasons[(value.sample, kpi.min_sample)] = _reason(
                        "sample_size", *sample_factor(value.sample, kpi.min_sample)
                    )
                figure = min(c[0], fresh, n[0])
                key = kpi.id + key_tail
                if dims:
                    key += "".join(f"|{k}={v}" for k, v in sorted(dims.items()))
                out.append(
                    (
                        key,
                        {
                            "schema_version": SCHEMA_VERSION,
                            "kpi": kpi.id,
                            "scope": scope,
                            "window": window,
                            "dimensions": dict(dims),
                            "value": finite_or_none(value.value),
                            "unit": kpi.unit,
                            "sample_size": value.sample,
                            "trust": {"value": figure, "reasons": [c[1], fresh_reason, n[1]]},
                            "untrusted": figure < trust_floor,
                            "watermark": wm,
                            "computed_at": now,
                        },
                    )
                )
    return out


def _reason(name: str, value: float, detail: str) -> tuple[float, dict[str, Any]]:
    """A trust reason as published (value rounded to 6 decimals), with that value."""
    rounded = round(value, 6)
    return rounded, {"name": name, "value": rounded, "detail": detail}
