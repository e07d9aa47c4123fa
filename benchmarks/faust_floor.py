"""The framework floor: what a Faust worker costs before any CRM Pulse logic runs.

A Faust app built like the worker (``PulseApp``: Faust's consumer, group membership, offset
tracking and commits, with the input topic handed over one list per fetch; the worker's
garbage-collector policy) whose batch
handler only validates each record with the input contract (``ChangeEvent``, as the engine
does first) and acks it. No state, no rules, no KPIs, no output. Whatever the worker does
per event comes on top of this, so it bounds what any design built on Faust and the
contract can reach on this machine.

Run by ``benchmarks/run.py`` as a subprocess; prints one JSON line (events/s from the first
batch received to the last event handled).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.decode import RawRecord, Refusal, decode_event
from streams.gc_policy import apply_gc_policy
from streams.settings import Settings
from streams.transport import PulseApp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--expected", type=int, required=True)
    p.add_argument("--budget", type=float, default=120.0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--no-validate", action="store_true", help="ack only: Faust's share without the contract"
    )
    args = p.parse_args()

    apply_gc_policy(Settings())  # the worker's collector policy
    data_dir = tempfile.mkdtemp(prefix="faust-floor-")
    app = PulseApp(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=data_dir,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=2000,  # the worker's default batch_max
        web_enabled=False,
    )
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes)
    counts = {"handled": 0, "valid": 0}
    marks: dict[str, float] = {}

    async def on_records(messages: list[Any]) -> None:
        marks.setdefault("first", time.perf_counter())
        valid = 0
        if not args.no_validate:
            now = datetime.now(UTC)
            for m in messages:
                raw = RawRecord(m.topic, m.partition, m.offset, m.key, m.value)
                if not isinstance(decode_event(raw, now), Refusal):
                    valid += 1
        cast(Any, app.consumer).ack_many(messages)  # the batching consumer's
        counts["handled"] += len(messages)
        counts["valid"] += valid
        marks["last"] = time.perf_counter()
        if counts["handled"] >= args.expected:
            await finish()

    app.batch_handlers[args.topic] = on_records

    @app.agent(topic, name="floor")
    async def floor(stream: Any) -> None:  # subscribes the topic; records go to the handler
        async for _ in stream:
            pass

    async def finish() -> None:
        first, last = marks.get("first"), marks.get("last")
        seconds = (last - first) if first is not None and last is not None else 0.0
        args.out.write_bytes(
            orjson.dumps(
                {
                    "processed": counts["handled"],
                    "valid": counts["valid"],
                    "seconds": seconds,
                    "eps": counts["handled"] / seconds if seconds > 0 else 0.0,
                }
            )
        )
        os._exit(0)  # measured: no need to wait for Faust's graceful shutdown

    @app.timer(1.0)
    async def budget() -> None:
        first = marks.get("first")
        if first is not None and time.perf_counter() - first > args.budget:
            await finish()

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
