"""Salesforce Change Data Capture from a topic, on a real worker and a real broker.

Change events written for this project in the subscriber's JSON form: a CREATE of two
opportunities at once (one ChangeEvent each), an UPDATE moving one back a stage (the
stage-backwards alert, with the Lightning link of the mapping), a GAP_UPDATE (no values:
counted on the metric and raised as a data-quality alert naming the object and ids) and a
record that is not JSON (dead-lettered with its bytes, key and the source). The source's
consumer group commits the topic's offsets once all of it is written.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.kafka_io import consume_until, produce, read_all

SOURCES = """
sources:
  - id: salesforce
    type: salesforce_cdc
    transport: {{kind: topic, topics: [{topic}]}}
    mapping:
      include: {starter}
      objects:
        Opportunity:
          entity: deal
          owner_field: OwnerId
          rename: {{Name: name, StageName: stage, Amount: amount, OwnerId: owner_id,
                   CloseDate: close_date, NextStep: next_step}}
          values:
            StageName: {{Prospecting: Prospecting, Qualification: Qualification,
                        Needs Analysis: Engaging, Proposal/Price Quote: Proposal,
                        Negotiation/Review: Negotiation, Closed Won: Won, Closed Lost: Lost}}
          record_url: https://acme.lightning.force.com/lightning/r/Opportunity/{{id}}/view
"""
T = 1_795_000_000_000  # commitTimestamp (epoch ms), a few days before the tests' clock


def cdc(change_type: str, ids: list[str], seq: int, **fields: Any) -> tuple[bytes, bytes]:
    header = {
        "entityName": "Opportunity", "recordIds": ids, "changeType": change_type,
        "changeOrigin": "com/salesforce/api/soap/58.0;client=SfdcInternalAPI/",
        "transactionKey": f"00035b2c-7a1e-4f0e-{seq:04d}", "sequenceNumber": 1,
        "commitTimestamp": T + seq * 1000, "commitNumber": 1172660800000 + seq,
        "commitUser": "0055e000001AbCdAAK",
        "changedFields": sorted(fields) if change_type == "UPDATE" else [],
        "nulledFields": [], "diffFields": [],
    }  # fmt: skip
    value = orjson.dumps({"ChangeEventHeader": header, **fields})
    return ids[0].encode() if ids else b"", value


async def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return meta.offset if meta is not None else -1


async def test_fan_out_backwards_alert_gap_alert_and_dead_letter(
    worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    topic = f"sf-cdc-{uuid.uuid4().hex[:8]}"
    created = cdc("CREATE", ["006A0000001", "006A0000002"], 1, Name="Acme renewal",
                  StageName="Negotiation/Review", Amount=42000.0, OwnerId="0055e000009XyZ",
                  CloseDate="2027-03-31", NextStep="Send the contract")  # fmt: skip
    back = cdc("UPDATE", ["006A0000001"], 2, StageName="Needs Analysis")
    gap = cdc("GAP_UPDATE", ["006A0000002", "006A0000003"], 3)
    broken = (b"006A0000009", b'{"ChangeEventHeader": ')
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.format(topic=topic, starter=REPO / "sources/salesforce.yaml"))
    worker = worker_factory(start=False, sources_file=str(sources))
    s = worker.settings
    bootstrap = s.bootstrap_servers
    # the source topic exists before the worker subscribes it
    await produce(bootstrap, topic, [created, back, gap, broken])
    worker.start()

    alerts = await consume_until(bootstrap, s.alerts_topic, lambda rs: len(rs) >= 2, 60)
    by_rule = {orjson.loads(r.value)["rule_id"]: orjson.loads(r.value) for r in alerts}
    assert set(by_rule) == {"deal-stage-backwards", "source-gap"}, (by_rule, worker.log_tail())
    backwards = by_rule["deal-stage-backwards"]
    assert backwards["subject"]["id"] == "006A0000001"
    assert backwards["owner_id"] == "0055e000009XyZ"
    assert (backwards["evidence"]["old"], backwards["evidence"]["new"]) == (
        "Negotiation", "Engaging",
    )  # fmt: skip
    assert backwards["links"][0]["url"] == (
        "https://acme.lightning.force.com/lightning/r/Opportunity/006A0000001/view"
    )
    gap_alert = by_rule["source-gap"]
    assert gap_alert["status"] == "FIRING" and gap_alert["severity"] == "warning"
    assert gap_alert["evidence"]["crm_object"] == "Opportunity"
    assert gap_alert["evidence"]["entity_ids"] == ["006A0000002", "006A0000003"]
    assert "Opportunity" in gap_alert["title"]

    events = [orjson.loads(r.value) for r in await read_all(bootstrap, s.events_topic)]
    assert sorted((e["entity_id"], e["op"]) for e in events) == [
        ("006A0000001", "create"),
        ("006A0000001", "update"),
        ("006A0000002", "create"),
    ]  # fan-out: one ChangeEvent per record id; the gap is never read as data
    dead = await consume_until(bootstrap, s.dlq_topic, lambda rs: len(rs) >= 1, 10)
    [letter] = dead
    assert (letter.key, letter.value) == broken
    error = orjson.loads(dict(letter.headers)["crm-pulse-error"])
    assert (error["source"], error["source_reason"], error["topic"], error["offset"]) == (
        "salesforce", "invalid_json", topic, 3,
    )  # fmt: skip

    metrics = worker.http_text("/metrics")
    assert (
        'crm_pulse_source_gaps_total{change_type="GAP_UPDATE",source="salesforce"} 1.0' in metrics
    )
    # offsets committed after the writes were acknowledged: all 4 input records
    assert await wait_for_async(lambda: committed(bootstrap, s.app_id, topic), 4, 30)


async def wait_for_async(read: Any, want: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await read() == want:
            return True
        await asyncio.sleep(0.5)
    return False
