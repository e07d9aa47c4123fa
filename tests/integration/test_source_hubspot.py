"""HubSpot webhooks on a real worker and a real broker: ``POST /sources/hubspot``.

A signed batch is answered 200 only once its events are on ``crm.events``; a tampered
body and a stale timestamp are answered 401 and write nothing; a signed body that is not
JSON is answered 400 and dead-lettered with its bytes and the source; while the broker is
held back (its JVM stopped with SIGSTOP) the answer is 503, never 2xx, and the sender's
retry after it is back is answered 200 with the same event ids.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from streams.runtime.broker import LocalKafka
from streams.sources.signatures import hubspot_signature_v3
from tests.integration.conftest import REPO, WorkerFactory, WorkerProcess
from tests.integration.kafka_io import consume_until, read_all

SECRET = "hubspot-app-secret-for-tests"
SOURCES = """
sources:
  - id: hubspot
    type: hubspot_webhook
    transport:
      kind: http
      secret: {{env: CRM_PULSE_TEST_HUBSPOT_SECRET}}
    mapping:
      include: {starter}
"""


def batch(deal_id: int, stage: str, event_id: int) -> bytes:
    now_ms = int(time.time() * 1000)
    return orjson.dumps([
        {"eventId": event_id, "subscriptionId": 2101, "portalId": 62515, "appId": 4021,
         "occurredAt": now_ms, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
         "objectId": deal_id, "propertyName": "dealstage", "propertyValue": stage,
         "changeSource": "CRM_UI", "sourceId": "userId:7001"},
        {"eventId": event_id + 1, "subscriptionId": 2102, "portalId": 62515, "appId": 4021,
         "occurredAt": now_ms, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
         "objectId": deal_id, "propertyName": "hubspot_owner_id", "propertyValue": "9001",
         "changeSource": "CRM_UI", "sourceId": "userId:7001"},
    ])  # fmt: skip


def post(
    worker: WorkerProcess,
    body: bytes,
    *,
    sign_body: bytes | None = None,
    age_s: float = 0.0,
    timeout: float = 20.0,
) -> tuple[int, dict[str, Any]]:
    url = f"{worker.url}/sources/hubspot"
    stamp = str(int((time.time() - age_s) * 1000))
    signature = hubspot_signature_v3(
        SecretStr(SECRET), "POST", url, body if sign_body is None else sign_body, stamp
    )
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": stamp,
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status), orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


def start(worker_factory: WorkerFactory, tmp_path: Path) -> WorkerProcess:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.format(starter=REPO / "sources" / "hubspot.yaml"))
    os.environ["CRM_PULSE_TEST_HUBSPOT_SECRET"] = SECRET  # the worker inherits it
    return worker_factory(sources_file=str(sources), source_ack_timeout_s="3")


async def test_signed_batch_is_acknowledged_tampered_stale_and_unreadable_are_refused(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = start(worker_factory, tmp_path)
    s = worker.settings
    body = batch(1042, "contractsent", 100)
    status, answer = await asyncio.to_thread(post, worker, body)
    assert (status, answer["events"], answer["refused"]) == (200, 2, 0), answer
    # answered after the acknowledgement: the events are on crm.events already
    events = [orjson.loads(r.value) for r in await read_all(s.bootstrap_servers, s.events_topic)]
    assert [(e["entity_id"], e["fields"]) for e in events] == [
        ("1042", {"stage": "Negotiation"}), ("1042", {"owner_id": "9001"}),
    ]  # fmt: skip
    assert {e["source"] for e in events} == {"hubspot"}
    assert events[1]["owner_id"] == "9001"

    tampered = body.replace(b"contractsent", b"closedwon___")
    status, answer = await asyncio.to_thread(post, worker, tampered, sign_body=body)
    assert status == 401, answer
    status, answer = await asyncio.to_thread(post, worker, body, age_s=400)  # > 5 minutes
    assert status == 401, answer
    status, answer = await asyncio.to_thread(post, worker, b"[{not json")
    assert (status, answer["reason"]) == (400, "invalid_json"), answer
    after = await read_all(s.bootstrap_servers, s.events_topic)
    assert len(after) == 2  # nothing of the refused requests reached crm.events
    dead = await consume_until(s.bootstrap_servers, s.dlq_topic, lambda rs: len(rs) >= 1, 10)
    [letter] = dead
    assert letter.value == b"[{not json"
    headers = {k: v for k, v in letter.headers}
    assert headers["crm-pulse-source"] == b"hubspot"
    error = orjson.loads(headers["crm-pulse-error"])
    assert (error["source"], error["source_reason"], error["adapter"]) == (
        "hubspot", "invalid_json", "http",
    )  # fmt: skip
    metrics = worker.http_text("/metrics")
    assert 'crm_pulse_source_requests_total{source="hubspot",status="401"} 2.0' in metrics


async def test_no_2xx_while_the_broker_is_held_back_then_the_retry_is_acknowledged(
    kafka: LocalKafka, worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    worker = start(worker_factory, tmp_path)
    s = worker.settings
    warm = await asyncio.to_thread(post, worker, batch(7, "qualifiedtobuy", 1))
    assert warm[0] == 200, warm
    body = batch(8, "decisionmakerboughtin", 500)
    assert kafka._proc is not None
    os.killpg(kafka._proc.pid, signal.SIGSTOP)  # the broker answers nothing from now on
    try:
        status, answer = await asyncio.to_thread(post, worker, body)
    finally:
        os.killpg(kafka._proc.pid, signal.SIGCONT)
    assert status == 503, answer
    status, answer = await asyncio.to_thread(post, worker, body)  # HubSpot's retry
    assert (status, answer["events"]) == (200, 2), answer
    events = [orjson.loads(r.value) for r in await read_all(s.bootstrap_servers, s.events_topic)]
    ids = {e["event_id"] for e in events if e["entity_id"] == "8"}
    assert len(ids) == 2  # a delivery that went through anyway repeats the same ids
    assert worker.http_status("/health") == 200
