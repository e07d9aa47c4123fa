"""A declarative mapping source over HTTP (Pipedrive's webhook v2 payload, relayed with the
shared-secret HMAC header) on a real worker and broker: signed -> 200 once the event is
on crm.events; a wrong or missing signature -> 401 and nothing written."""

from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from streams.sources.signatures import hmac_sha256_hex
from tests.integration.conftest import REPO, WorkerFactory, WorkerProcess
from tests.integration.kafka_io import read_all

SECRET = "pipedrive-relay-secret-for-tests"
SOURCES = """
sources:
  - id: pipedrive
    type: mapping
    transport:
      kind: http
      secret: {{env: CRM_PULSE_TEST_PIPEDRIVE_SECRET}}
      signature_header: X-CRM-Pulse-Signature
    event:
      object: meta.entity
      entity_id: meta.entity_id
      op: meta.action
      occurred_at: meta.timestamp
      event_id: meta.id
      actor: meta.user_id
      owner_id: data.owner_id || previous.owner_id
      fields: data
      changed: "previous && keys(previous)"
    op_values: {{create: create, change: update, delete: delete}}
    mapping:
      include: {starter}
"""


def post(worker: WorkerProcess, body: bytes, signature: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-CRM-Pulse-Signature"] = signature
    request = urllib.request.Request(
        f"{worker.url}/sources/pipedrive", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return int(resp.status), orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


async def test_pipedrive_webhook_signed_accepted_unsigned_refused(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.format(starter=REPO / "sources" / "pipedrive.yaml"))
    os.environ["CRM_PULSE_TEST_PIPEDRIVE_SECRET"] = SECRET  # the worker inherits it
    worker = worker_factory(sources_file=str(sources))
    s = worker.settings
    sample = (REPO / "tests/data/sources/pipedrive.jsonl").read_bytes().splitlines()[1]
    change = orjson.loads(sample)
    change["meta"]["timestamp"] = "2026-11-01T10:02:00.000Z"
    body = orjson.dumps(change)

    status, answer = await asyncio.to_thread(post, worker, body, "sha256=" + "0" * 64)
    assert status == 401, answer
    status, answer = await asyncio.to_thread(post, worker, body, None)
    assert status == 401, answer
    assert await read_all(s.bootstrap_servers, s.events_topic, settle=1.0) == []

    signature = hmac_sha256_hex(SecretStr(SECRET), body)
    status, answer = await asyncio.to_thread(post, worker, body, signature)
    assert (status, answer["events"]) == (200, 1), answer
    [record] = await read_all(s.bootstrap_servers, s.events_topic)
    event = orjson.loads(record.value)
    assert record.key == b"4812"
    assert (event["source"], event["entity"], event["op"]) == ("pipedrive", "deal", "update")
    assert event["fields"]["stage"] == "Proposal"  # stage_id 4 through the value map
    assert set(event["changed"]) == {"stage", "modified_at"}
