"""PostgreSQL -> Debezium (Kafka Connect) -> Kafka -> worker -> crm.alerts, real parts only.

A PostgreSQL with the CRM schema holds 1,000 deals before the connector starts: its
initial snapshot (Debezium ``op: r``) builds the records' state and the KPIs count them,
but raises no alert, although the rules would judge many of them (half have no close date
in Proposal). Then an SQL UPDATE moves one deal back a stage: exactly one FIRING alert,
with the deal's id, owner, evidence and the link to the record from the mapping.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson

from streams.runtime.broker import LocalKafka
from streams.runtime.connect import LocalConnect, debezium_postgres_config
from streams.runtime.postgres import LocalPostgres
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.kafka_io import consume_until, read_all, wait_for
from tests.integration.source_fixtures import connect, postgres  # noqa: F401 - fixtures

ROWS = 1_000
AMOUNT = 1_000.0

SOURCES = """
sources:
  - id: crm-db
    type: debezium
    transport:
      kind: topic
      topics: [{prefix}.public.deals, {prefix}.public.leads, {prefix}.public.activities]
    mapping:
      include: {starter}
      objects:
        deals:
          entity: deal
          id_field: id
          owner_field: owner_id
          record_url: https://crm.example.com/deals/{{id}}
"""


def seed(pg: LocalPostgres) -> None:
    """1,000 open deals of 10 owners; the odd ones in Proposal without a close date (the
    rule deal-proposal-without-close-date would fire on them if a snapshot were judged)."""
    pg.psql(f"""
        INSERT INTO deals (id, name, stage, amount, probability, owner_id, close_date)
        SELECT format('D-%s', lpad(i::text, 4, '0')), format('Deal %s', i),
               CASE WHEN i % 2 = 1 THEN 'Proposal' ELSE 'Negotiation' END,
               {AMOUNT}, 40, format('rep-%s', i % 10),
               CASE WHEN i % 2 = 1 THEN NULL ELSE DATE '2027-06-30' END
        FROM generate_series(1, {ROWS}) AS i;
    """)  # fmt: skip


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") and line.split("}")[0][len(name) + 1 :] == want:
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_sql_update_moving_a_deal_back_fires_one_alert_and_snapshot_fires_none(
    kafka: LocalKafka,
    postgres: LocalPostgres,  # noqa: F811
    connect: LocalConnect,  # noqa: F811
    worker_factory: WorkerFactory,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix = f"pg{suffix}"
    seed(postgres)
    connect.add_connector(
        f"crm-{suffix}",
        debezium_postgres_config(
            host="127.0.0.1", port=postgres.port, user=postgres.superuser,
            database=postgres.database, topic_prefix=prefix, slot=f"crm_pulse_{suffix}",
        ),
    )  # fmt: skip
    deals_topic = f"{prefix}.public.deals"
    snapshot = await consume_until(
        kafka.bootstrap, deals_topic, lambda rs: len(rs) >= ROWS, timeout=120
    )
    assert len(snapshot) == ROWS, connect.log_tail()
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES.format(prefix=prefix, starter=REPO / "sources/postgres-crm.yaml"))
    worker = worker_factory(sources_file=str(sources), kpi_publish_interval_s="0.3")
    s = worker.settings

    def open_pipeline() -> float | None:
        body = orjson.loads(worker.http_text(
            "/kpis?kpi=open_pipeline_value&scope_kind=global&scope_id=all&window=all"
        ))  # fmt: skip
        return body["snapshots"][0]["value"] if body["count"] else None

    def events_counted() -> float:
        text = worker.http_text("/metrics")
        return metric(text, "crm_pulse_events_total", entity="deal", op="create", source="crm-db")

    assert await wait_for(lambda: events_counted() == ROWS, 120), worker.log_tail()
    assert await wait_for(lambda: open_pipeline() == ROWS * AMOUNT, 60), (
        open_pipeline(), worker.log_tail(),
    )  # fmt: skip
    text = worker.http_text("/metrics")
    assert metric(text, "crm_pulse_source_records_total", source="crm-db", result="event") == ROWS
    alerts = await read_all(s.bootstrap_servers, s.alerts_topic, settle=3.0)
    assert alerts == [], [a.value for a in alerts[:3]]  # the first sync raised nothing

    postgres.psql("UPDATE deals SET stage = 'Engaging', updated_at = now() WHERE id = 'D-0042'")

    def backwards(records: Any) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in records]

    got = await consume_until(s.bootstrap_servers, s.alerts_topic, lambda rs: len(rs) >= 1, 90)
    assert got, worker.log_tail()
    later = await read_all(s.bootstrap_servers, s.alerts_topic, settle=3.0)
    [alert] = backwards(later)  # exactly one alert
    assert alert["status"] == "FIRING"
    assert alert["rule_id"] == "deal-stage-backwards"
    assert alert["subject"] == {"kind": "entity", "entity": "deal", "id": "D-0042", "scope": None}
    assert alert["owner_id"] == "rep-2"
    assert alert["evidence"]["old"] == "Negotiation"
    assert alert["evidence"]["new"] == "Engaging"
    assert alert["links"] == [
        {"rel": "record", "url": "https://crm.example.com/deals/D-0042", "title": "crm-db"}
    ]
    assert "D-0042" in alert["message"]
    assert open_pipeline() == ROWS * AMOUNT  # still open, still counted once
