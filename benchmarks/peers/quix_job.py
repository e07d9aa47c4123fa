"""The benchmark job written with Quix Streams: the peer CRM Pulse is compared with.

Same work as the CRM Pulse worker does for the parity rules: validate each event with the
same pydantic model, keep per-deal state (RocksDB state store, the Quix default, with its
changelog topic), detect stage regressions, amount changes of more than 50 % and missing
required fields (FIRING, then RESOLVED once filled), sum won value per owner, and produce
the alerts to a topic. Tuned as the Quix docs advise: raw ``bytes`` deserializer (we
validate ourselves), no per-event logging or printing, default consumer and RocksDB
settings, at-least-once. Runs as ``python -m benchmarks.peers.quix_job`` and writes what it
measured as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from quixstreams import Application, State

from streams.contracts.events import ChangeEvent, Op
from streams.rules.types.values import as_number, is_blank

ORDER = ("Prospecting", "Qualification", "Engaging", "Proposal", "Negotiation", "Won")
AMOUNT_PCT = 50.0
REQUIRED = ("amount", "next_step")
REQUIRED_STAGES = ("Proposal", "Negotiation")
DEDUP_WINDOW = 8


class Job:
    """The per-event function and its counters (one instance per process)."""

    def __init__(self, expected: int, on_done: Any) -> None:
        self.expected = expected
        self.on_done = on_done
        self.processed = self.invalid = self.duplicates = self.alerts = 0
        self.first: float | None = None
        self.last = 0.0
        self.won_by_owner: defaultdict[str, float] = defaultdict(float)

    def __call__(self, value: bytes, state: State[Any, Any]) -> list[dict[str, Any]]:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.processed += 1
        self.last = now
        try:
            out = self._handle(value, state)
        finally:
            if self.processed >= self.expected:
                self.on_done()
        self.alerts += len(out)
        return out

    def _handle(self, value: bytes, state: State[Any, Any]) -> list[dict[str, Any]]:
        try:
            event = ChangeEvent.model_validate_json(value)
        except ValidationError:
            self.invalid += 1
            return []
        deal: dict[str, Any] | None = state.get("deal")
        ids: list[str] = list(deal["ids"]) if deal else []
        if event.event_id in ids:
            self.duplicates += 1
            return []
        ids = [*ids, event.event_id][-DEDUP_WINDOW:]
        before = deal["f"] if deal else None
        if event.op is Op.CREATE or before is None:
            after = dict(event.fields)
        elif event.op is Op.UPDATE:
            after = {**before, **event.fields}
        else:
            after = dict(before)
        alerts: list[dict[str, Any]] = []
        if before is not None:
            old, new = before.get("stage"), after.get("stage")
            if old in ORDER and new in ORDER and ORDER.index(new) < ORDER.index(old):
                alerts.append(_alert("peer-stage-backwards", event, {"old": old, "new": new}))
            old_n, new_n = as_number(before.get("amount")), as_number(after.get("amount"))
            if old_n is not None and new_n is not None and new_n != old_n:
                pct = abs(new_n - old_n) / abs(old_n) * 100.0 if old_n else float("inf")
                if pct > AMOUNT_PCT:
                    alerts.append(_alert("peer-amount-swing", event, {"old": old_n, "new": new_n}))
        open_required = bool(deal and deal.get("rf"))
        missing = (
            [name for name in REQUIRED if is_blank(after.get(name))]
            if after.get("stage") in REQUIRED_STAGES
            else []
        )
        if missing and not open_required:
            alerts.append(_alert("peer-required-fields", event, {"missing": missing}))
        elif open_required and not missing:
            alerts.append(_alert("peer-required-fields", event, {}, status="RESOLVED"))
        if after.get("stage") == "Won" and (before or {}).get("stage") != "Won":
            owner = event.owner_id or str(after.get("owner_id") or "")
            self.won_by_owner[owner] += as_number(after.get("amount")) or 0.0
        state.set(
            "deal",
            {
                "f": after,
                "ids": ids,
                "o": event.owner_id,
                "u": event.occurred_at.timestamp(),
                "rf": bool(missing),
            },
        )
        return alerts


def _alert(
    rule: str, event: ChangeEvent, evidence: dict[str, Any], status: str = "FIRING"
) -> dict[str, Any]:
    alert_id = hashlib.sha1(f"{rule}\x1f{event.entity_id}\x1f{event.event_id}".encode())
    return {
        "schema_version": 1,
        "alert_id": alert_id.hexdigest()[:24],
        "status": status,
        "rule_id": rule,
        "subject": {"kind": "entity", "entity": event.entity.value, "id": event.entity_id},
        "owner_id": event.owner_id,
        "evidence": evidence,
        "event_ids": [event.event_id],
        "fired_at": datetime.now(UTC).isoformat(),
    }


def peak_rss() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--alerts-topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    job = Job(args.expect, app.stop)
    source = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    alerts = app.topic(args.alerts_topic, value_serializer="json", key_serializer="bytes")
    sdf = app.dataframe(source)
    sdf = sdf.apply(job, stateful=True, expand=True)
    sdf.to_topic(alerts, key=lambda alert: alert["alert_id"].encode())

    def budget_over() -> None:
        while job.first is None or time.monotonic() - job.first < args.budget:
            if job.processed >= args.expect:
                return
            time.sleep(0.2)
        app.stop()

    threading.Thread(target=budget_over, daemon=True).start()
    app.run()
    result = {
        "processed": job.processed,
        "invalid": job.invalid,
        "duplicates": job.duplicates,
        "alerts": job.alerts,
        "seconds": (job.last - job.first) if job.first is not None else 0.0,
        "owners_with_won_value": len(job.won_by_owner),
        "peak_rss_bytes": peak_rss(),
        "pid": os.getpid(),
    }
    Path(args.out).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
