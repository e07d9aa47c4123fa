"""``crm-pulse notify``: run the notifier alone, with a /metrics endpoint."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from streams.metrics import Metrics
from streams.settings import Settings


def add_commands(sub: Any) -> None:
    p = sub.add_parser("notify", help="deliver crm.alerts to Alertmanager and signed webhooks")
    p.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on this port")
    p.set_defaults(func=_notify)


def _notify(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import start_http_server

    from streams.notify.service import run_notifier

    if not settings.alertmanager_urls and settings.webhooks_file is None:
        print("nothing to notify: set CRM_PULSE_ALERTMANAGER_URL and/or CRM_PULSE_WEBHOOKS_FILE")
        return 2
    metrics = Metrics()
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr=settings.web_host, registry=metrics.registry)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_notifier(settings, metrics, stop)

    asyncio.run(main())
    return 0
