"""HTTP surfaces on the Faust web server: ``/health``, ``/ready``, ``/metrics``.

The server binds ``Settings.web_host`` (127.0.0.1 by default); Faust's table-browsing views
stay off unless ``web_tables_enabled`` is set (only behind a protecting proxy).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import Pulse


def register(pulse: Pulse) -> None:
    app = pulse.app

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app": pulse.settings.app_id})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        assigned = (
            sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
            if app.consumer is not None
            else []
        )
        rules_ready = pulse.extras.get("rules_ready")
        rules_loaded = rules_ready is None or rules_ready.is_set()
        is_ready = bool(assigned) and not app.rebalancing and rules_loaded
        body = {
            "ready": is_ready,
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
