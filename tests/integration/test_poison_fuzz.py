"""A real worker fed a few hundred hostile-but-valid events, every poison pill of issue 12
and a record near the broker's message limit: it never exits, every input is either
processed or on the dead-letter topic (counts add up exactly), and the alert for a good
event sent after them arrives."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.kafka_io import consume_until, produce, read_all, wait_for
from tests.unit.poison import change_event, hostile_events, poison_pills

SEED = 20261129
GENERATED = 300


def counters(worker: WorkerProcess) -> dict[str, float]:
    """Input accounting from /metrics: accepted, duplicates, out of order and dead letters
    by reason."""
    text = worker.http_text("/metrics")
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("crm_pulse_events_total{"):
            out["accepted"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("crm_pulse_duplicate_events_total "):
            out["duplicates"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("crm_pulse_out_of_order_events_total "):
            # older than the record's last change: not applied, by the documented policy
            out["out_of_order"] += float(line.rsplit(" ", 1)[1])
        elif m := re.match(r'crm_pulse_invalid_events_total\{reason="([a-z_]+)"\} (\S+)', line):
            out[f"dead:{m.group(1)}"] += float(m.group(2))
    return dict(out)


def near_limit_record(start: datetime) -> bytes:
    """A valid event of about 1,000,000 bytes: under the broker's limit as an input, over
    every output cap (state, alert, facts) if copied as is."""
    body = change_event(900, "BIG", "create", stage="Negotiation", start=start)
    pad = 1_000_000 - len(body)
    return body.replace(b'"fields": {', b'"fields": {"notes": "' + b"n" * pad + b'", ')


async def test_hostile_backlog_never_stops_the_worker(worker_factory: WorkerFactory) -> None:
    worker = worker_factory()
    assert worker.proc is not None
    pid = worker.proc.pid
    s = worker.settings
    start = datetime.now(UTC) - timedelta(days=1)  # recent: within any event-time horizon
    inputs: list[tuple[bytes | None, bytes | None]] = list(
        hostile_events(SEED, GENERATED, start=start)
    )
    for _, events in poison_pills(prefix="PP", start=start):
        inputs.extend((b"pill", value) for value in events)
    inputs.append((b"BIG", near_limit_record(start)))
    # refused (not JSON) and too large to travel with its dead-letter headers: cut
    inputs.append((b"HUGE", b'{"event_id": "huge", "junk": "' + b"j" * 1_045_000))
    good = [
        change_event(1000, "GOOD", "create", stage="Negotiation", name="Good deal", start=start),
        change_event(1001, "GOOD", stage="Proposal", minutes=1, start=start),  # backwards
    ]
    inputs.extend((b"GOOD", value) for value in good)
    await produce(s.bootstrap_servers, s.events_topic, inputs)

    def good_alert(records: list) -> bool:  # type: ignore[type-arg]
        return any(
            orjson.loads(r.value)["subject"]["id"] == "GOOD"
            and orjson.loads(r.value)["rule_id"] == "deal-stage-backwards"
            for r in records if r.value
        )  # fmt: skip

    alerts = await consume_until(s.bootstrap_servers, s.alerts_topic, good_alert, timeout=90)
    assert good_alert(alerts), worker.log_tail()
    assert worker.proc is not None and worker.proc.poll() is None and worker.proc.pid == pid

    def all_counted() -> bool:
        c = counters(worker)
        return sum(c.values()) >= len(inputs)

    await wait_for(all_counted, timeout=60)
    c = counters(worker)
    dlq = await read_all(s.bootstrap_servers, s.dlq_topic, settle=2.0)
    reasons = Counter(dict(r.headers)["crm-pulse-reason"].decode() for r in dlq)
    # every input either processed or dead-lettered, exactly once
    not_applied = c.get("out_of_order", 0.0)
    assert c["accepted"] + c["duplicates"] + not_applied + len(dlq) == len(inputs), (c, reasons)
    assert {k: v for k, v in c.items() if k.startswith("dead:")} == {
        f"dead:{reason}": float(n) for reason, n in reasons.items()
    }
    assert c["duplicates"] >= 1 and len(dlq) >= 1
    (huge,) = [r for r in dlq if r.key == b"HUGE"]
    assert dict(huge.headers)["crm-pulse-cut"] == str(1_045_000 + 30).encode()
    assert huge.value.startswith(b'{"event_id": "huge"') and len(huge.value) < 1_048_576 - 8_192
    for record in dlq:  # each dead letter names why, and fits
        error = orjson.loads(dict(record.headers)["crm-pulse-error"])
        assert error["reason"] and error["detail"] and error["topic"] == s.events_topic
    # every alert re-decodes and is small; the worker never restarted
    everything = await read_all(s.bootstrap_servers, s.alerts_topic, settle=1.0)
    assert everything and all(len(r.value) < 64_000 for r in everything)
    assert {orjson.loads(r.value)["alert_id"] for r in everything}
    assert worker.proc is not None and worker.proc.poll() is None and worker.proc.pid == pid
    assert worker.http_status("/health") == 200
    print(
        f"\ninputs={len(inputs)} accepted={c['accepted']:.0f} "
        f"duplicates={c['duplicates']:.0f} dead_letters={len(dlq)} {dict(reasons)} "
        f"alerts={len(everything)}"
    )
