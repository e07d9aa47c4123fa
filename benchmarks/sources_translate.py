"""Events one core translates per second, per source type, beside baselines of the same run.

Inputs are the sample payloads of ``tests/data/sources`` (sources file
``tests/data/sources/sources.yaml``), each copied ``--inputs`` times with distinct record
ids. For each workload it prints CPU time (thread time, best of ``--repeat`` rounds, so
other processes weigh less) per input and per event, and events per second of:

- ``translate``: the source's translator, which ends with the engine's own decoder;
- ``orjson.loads`` of the same inputs: parsing alone, the floor;
- ``decode_event`` of the translated events as JSON: what the engine pays per event after
  the source (the ChangeEvent contract), for comparison.

Run: ``python benchmarks/sources_translate.py [--inputs N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.decode import RawRecord, decode_event
from streams.sources.base import Translator
from streams.sources.config import load_sources
from streams.sources.registry import build_translator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sources"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _lines(name: str) -> list[Any]:
    return [orjson.loads(x) for x in (DATA / name).read_bytes().splitlines() if x.strip()]


def debezium_envelope(i: int) -> Any:
    doc = copy.deepcopy(_lines("debezium-postgres.jsonl")[2])
    for side in ("before", "after"):
        doc["payload"][side]["id"] = 100_000 + i
    doc["payload"]["source"]["lsn"] = 30_000_000 + i * 64
    return doc


def debezium_plain(i: int) -> Any:
    doc = copy.deepcopy(_lines("debezium-mysql.jsonl")[1])
    for side in ("before", "after"):
        doc[side]["id"] = 100_000 + i
    doc["source"]["pos"] = 1_000 + i * 300
    return doc


def salesforce_update(i: int) -> Any:
    doc = copy.deepcopy(_lines("salesforce.jsonl")[1])
    doc["ChangeEventHeader"]["recordIds"] = [f"0065g{i:013d}"]
    doc["ChangeEventHeader"]["transactionKey"] = f"0001a3b4-5c6d-7e8f-9a0b-{i:012x}"
    return doc


def salesforce_create(i: int) -> Any:
    doc = copy.deepcopy(_lines("salesforce.jsonl")[0])
    doc["ChangeEventHeader"]["recordIds"] = [f"0065g{i:013d}"]
    doc["ChangeEventHeader"]["transactionKey"] = f"0001a3b4-5c6d-7e8f-9b0b-{i:012x}"
    return doc


def hubspot_batch(i: int) -> Any:
    batch = orjson.loads((DATA / "hubspot.json").read_bytes())
    template = next(e for e in batch if e["eventId"] == 105)
    stages = ("appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon")
    return [dict(template, eventId=i * 100 + k, objectId=18_000_000_000 + i * 100 + k,
                 propertyValue=stages[k % 4]) for k in range(100)]  # fmt: skip


def pipedrive_change(i: int) -> Any:
    doc = copy.deepcopy(_lines("pipedrive.jsonl")[1])
    doc["meta"]["entity_id"] = str(10_000 + i)
    doc["meta"]["id"] = f"3f9e1c2a-7b7d-4d8e-9f0a-{i:012x}"
    doc["data"]["id"] = 10_000 + i
    return doc


#: workload name -> (source id of the test sources file, input builder)
WORKLOADS: dict[str, tuple[str, Callable[[int], Any]]] = {
    "debezium, schema envelope (update)": ("crm-db", debezium_envelope),
    "debezium, no envelope (update)": ("crm-db", debezium_plain),
    "salesforce_cdc UPDATE": ("salesforce", salesforce_update),
    "salesforce_cdc CREATE": ("salesforce", salesforce_create),
    "hubspot_webhook, batches of 100": ("hubspot", hubspot_batch),
    "mapping (Pipedrive v2 change)": ("pipedrive", pipedrive_change),
}


def translate_all(translator: Translator, inputs: list[bytes]) -> None:
    for raw in inputs:
        translator.translate(raw, received_at=NOW)


def best_cpu(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best


def measure(
    name: str, translator: Translator, build: Callable[[int], Any], count: int, repeat: int
) -> str:
    """One table row: translate, orjson.loads and decode_event over the same inputs."""
    inputs = [orjson.dumps(build(i)) for i in range(count)]
    events = [e for raw in inputs for e in translator.translate(raw, received_at=NOW).events]
    refused = sum(len(translator.translate(r, received_at=NOW).refusals) for r in inputs)
    assert not refused, f"{name}: {refused} refusals"
    encoded = [
        RawRecord("t", 0, i, None, e.model_dump_json().encode()) for i, e in enumerate(events)
    ]
    t = best_cpu(lambda: translate_all(translator, inputs), repeat)
    floor = best_cpu(lambda: [orjson.loads(raw) for raw in inputs], repeat)
    decode = best_cpu(lambda: [decode_event(r, NOW) for r in encoded], repeat)
    per_input = len(events) / len(inputs)
    size = sum(map(len, inputs)) / len(inputs)
    return (
        f"{name:<36} {size:>8.0f} {per_input:>5.0f} {t / len(inputs) * 1e6:>8.1f} µs "
        f"{len(events) / t:>9,.0f} {len(events) / floor:>11,.0f} {len(events) / decode:>12,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=2000, help="inputs per workload")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (best is kept)")
    args = parser.parse_args()
    config = load_sources(DATA / "sources.yaml")
    print(f"{args.inputs} inputs per workload, best of {args.repeat} rounds, CPU time of one "
          "thread\n")  # fmt: skip
    header = (f"{'workload':<36} {'bytes/in':>8} {'ev/in':>5} {'translate':>11} "
              f"{'ev/s':>9} {'loads ev/s':>11} {'decode ev/s':>12}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, (source_id, build) in WORKLOADS.items():
        source = config.get(source_id)
        assert source is not None
        print(measure(name, build_translator(source), build, args.inputs, args.repeat))
    print(
        "\ntranslate: µs per input; ev/s: events per second of one core (translate);"
        "\nloads ev/s: orjson.loads of the same inputs only; decode ev/s: decode_event of"
        "\nthe translated events (the engine's per-event contract check, for comparison)."
    )


if __name__ == "__main__":
    main()
