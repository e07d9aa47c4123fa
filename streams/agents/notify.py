"""The notifier inside the worker (``CRM_PULSE_NOTIFY_ENABLED=true``).

It keeps its own consumer group (``<app_id>-notify``) and commits after delivery, exactly
as ``crm-pulse notify`` does alone: the worker's own offsets and state are not involved.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.runtime.container import Runtime

log = logging.getLogger(__name__)


def register(app: Any, rt: Runtime) -> None:
    settings = rt.settings
    if not settings.notify_enabled:
        return
    if not settings.alertmanager_urls and settings.webhooks_file is None:
        log.warning("notify_enabled but no Alertmanager URL nor webhooks file: notifier off")
        return

    @app.task
    async def notifier() -> None:
        from streams.notify.service import run_notifier

        stop = asyncio.Event()
        try:
            await run_notifier(settings, rt.metrics, stop)
        except asyncio.CancelledError:
            stop.set()
            raise
