"""Transport: HTTP clients of the notifier kinds (aiohttp). One job: post, report the outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from streams.notify.retry import retryable_status
from streams.notify.signing import signed_headers
from streams.notify.targets import WebhookTarget


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    retryable: bool
    reason: str


def _from_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, False, f"http_{status}")
    return Outcome(False, retryable_status(status), f"http_{status}")


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> Outcome:
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            await response.read()
            return _from_status(response.status)
    except TimeoutError:
        return Outcome(False, True, "timeout")
    except aiohttp.ClientError as exc:
        return Outcome(False, True, f"connection: {type(exc).__name__}")


class AlertmanagerClient:
    """Posts to ``/api/v2/alerts`` of every URL (an HA pair gets each alert on both members).

    Success when at least one member accepted: Alertmanager members gossip their state.
    """

    name = "alertmanager"

    def __init__(self, session: aiohttp.ClientSession, urls: Sequence[str], timeout_s: float = 10):
        self._session = session
        self._urls = [f"{u}/api/v2/alerts" for u in urls]
        self._timeout = timeout_s

    async def post(self, alerts: list[dict[str, Any]]) -> Outcome:
        body = orjson.dumps(alerts)
        headers = {"Content-Type": "application/json"}
        outcomes = await asyncio.gather(
            *(_post(self._session, url, body, headers, self._timeout) for url in self._urls)
        )
        for outcome in outcomes:
            if outcome.ok:
                return outcome
        # A 4xx from a live member is the payload's fault: retrying will not help.
        rejected = [o for o in outcomes if not o.retryable]
        if rejected:
            return rejected[0]
        return Outcome(False, True, outcomes[0].reason)


class WebhookClient:
    """Signed POST of the ``AlertEvent`` JSON, at most ``concurrency`` requests in flight."""

    def __init__(self, session: aiohttp.ClientSession, target: WebhookTarget) -> None:
        self.target = target
        self.name = target.name
        self._session = session
        self._limit = asyncio.Semaphore(target.concurrency)

    async def post(self, body: bytes) -> Outcome:
        secret = self.target.secret.get_secret_value()
        async with self._limit:
            headers = signed_headers(secret, int(time.time()), body)
            return await _post(
                self._session, str(self.target.url), body, headers, self.target.timeout_s
            )
