"""HTTP surfaces on the Faust web server: ``/``, ``/health``, ``/ready``, ``/metrics``.

``/health`` (liveness) answers 200 while the worker can make progress and 503 with the
reasons as soon as it cannot (:mod:`streams.liveness`); ``/ready`` answers 200 only when
it is healthy *and* has partitions, recovered tables and the live rules. ``/`` lists the
endpoints (Faust's own ``{"status": "OK"}`` index is replaced).

The server binds ``Settings.web_host`` (127.0.0.1 by default); Faust's table-browsing views
stay off unless ``web_tables_enabled`` is set (only behind a protecting proxy).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.liveness import problems, read_vitals
from streams.runtime.container import Runtime

#: What ``GET /`` answers: the worker's endpoints (the write API needs the bearer token).
ENDPOINTS = {
    "/health": "liveness: 200 while the worker can make progress, else 503 with reasons",
    "/ready": "readiness: 200 when healthy, assigned, recovered and the live rules are read",
    "/metrics": "Prometheus metrics",
    "/rules": "live rules (GET; PUT and DELETE /rules/{id} with the bearer token)",
    "/alerts": "open and recent alerts (?status=&owner=)",
    "/silences": "silences (GET; POST and DELETE with the bearer token)",
    "/kpis": "KPI snapshots (?kpi=&scope_kind=&scope_id=&window=), /kpis/status",
}


def health_problems(pulse: Runtime) -> list[str]:
    """Why the worker cannot make progress right now (empty: it can)."""
    try:
        vitals = read_vitals(pulse, stopping=pulse.stopping)
    except Exception as exc:  # a snapshot that cannot be read is not a healthy worker
        return [f"state unreadable: {type(exc).__name__}: {exc}"]
    return [p.reason for p in problems(vitals, pulse.settings.fetch_stall_s)]


def register(app: Any, pulse: Runtime) -> None:
    blueprints = app.web.blueprints  # Faust's index ({"status": "OK"}) gives way to ours
    blueprints._enabled = [(prefix, bp) for prefix, bp in blueprints._enabled
                           if "production_index" not in str(bp)]  # fmt: skip

    @app.page("/")
    async def index(web: Any, request: Any) -> Any:
        return web.json({"app": pulse.settings.app_id, "endpoints": ENDPOINTS})

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        reasons = health_problems(pulse)
        body = {"status": "fail" if reasons else "ok", "app": pulse.settings.app_id,
                "problems": reasons}  # fmt: skip
        return web.json(body, status=503 if reasons else 200)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        assigned = (
            sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
            if app.consumer is not None
            else []
        )
        rules_loaded = pulse.rules_ready.is_set()
        reasons = health_problems(pulse)
        is_ready = bool(assigned) and not app.rebalancing and rules_loaded and not reasons
        body = {
            "ready": is_ready,
            "problems": reasons,
            "rebalancing": bool(app.rebalancing),
            "assigned": assigned,
            "rules_version": pulse.engine.rules.version,
            "rules_loaded": rules_loaded,
            "tracked_records": len(pulse.entity_table.data),
        }
        return web.json(body, status=200 if is_ready else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        pulse.metrics.tracked_records.set(len(pulse.entity_table.data))
        # aiohttp refuses a charset inside content_type=, so the full header is set directly
        return web.bytes(
            generate_latest(pulse.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
