"""The pure part of the differential check: what a worker run published, in canonical form,
its file, and the comparison of two of them.

A run's outputs are
* every alert of the alerts topic as ``(alert_id, sequence) -> (status, rule_id)``
  (consumers deduplicate on ``(alert_id, sequence)``: so does this);
* the last KPI snapshot of every key of the (compacted) KPI topic, without the fields
  that say *when* it was computed (``computed_at``, ``watermark``: the watermark a
  snapshot carries is the one of the publication round that last found its value
  changed, which depends on when rounds ran, not on what was computed).

The file is gzip JSON lines, sorted: a header, then one line per alert, then one per KPI
key, so two files of the same outputs are byte for byte the same and a ``zcat | diff``
reads well. No Kafka here: unit-tested directly (``tests/unit/test_differential.py``).
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FORMAT = "crm-pulse-differential/1"
#: Snapshot fields compared; the others (``computed_at``, ``watermark``, ``schema_version``)
#: say when a value was computed, not what it is.
KPI_FIELDS = ("kpi", "scope", "window", "dimensions", "value", "unit", "sample_size", "trust",
              "untrusted")  # fmt: skip
KPI_EXCLUDED = ("computed_at", "watermark", "schema_version")
#: Header entries that must match for two files to be comparable (same input, same job).
INPUT_KEYS = ("events", "seed", "deals", "owners", "partitions", "stream_sha256", "rules", "kpis")

AlertKey = tuple[str, int]


@dataclass
class Outputs:
    """The canonical outputs of one run."""

    header: dict[str, Any] = field(default_factory=dict)
    #: (alert_id, sequence) -> {"status", "rule_id"}
    alerts: dict[AlertKey, dict[str, Any]] = field(default_factory=dict)
    #: KPI topic key -> the compared fields of its last snapshot
    kpis: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (alert_id, sequence) published twice with different content (never expected)
    conflicts: list[str] = field(default_factory=list)


def alerts_of(values: Iterable[bytes]) -> tuple[dict[AlertKey, dict[str, Any]], list[str]]:
    """Alert record values -> the canonical alerts, and the keys seen with two contents."""
    alerts: dict[AlertKey, dict[str, Any]] = {}
    conflicts: list[str] = []
    for value in values:
        doc = orjson.loads(value)
        key = (str(doc["alert_id"]), int(doc["sequence"]))
        body = {"status": doc["status"], "rule_id": doc["rule_id"]}
        seen = alerts.setdefault(key, body)
        if seen != body:
            conflicts.append(f"{key[0]}#{key[1]}: {seen} then {body}")
    return alerts, conflicts


def final_kpis(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, dict[str, Any]]:
    """``(key, value)`` records of the KPI topic in log order -> the last snapshot per key
    (a tombstone removes its key), reduced to :data:`KPI_FIELDS`."""
    latest: dict[str, bytes | None] = {}
    for key, value in records:
        if key is None:
            continue
        latest[key.decode()] = value
    out: dict[str, dict[str, Any]] = {}
    for name_key, last in latest.items():
        if last is None:
            continue
        doc = orjson.loads(last)
        out[name_key] = {name: doc.get(name) for name in KPI_FIELDS}
    return out


def _lines(outputs: Outputs) -> list[bytes]:
    dump = orjson.OPT_SORT_KEYS
    header = {**outputs.header, "format": FORMAT, "alerts": len(outputs.alerts),
              "kpi_keys": len(outputs.kpis), "conflicts": outputs.conflicts}  # fmt: skip
    lines = [orjson.dumps({"header": header}, option=dump)]
    for (alert_id, sequence), body in sorted(outputs.alerts.items()):
        lines.append(orjson.dumps({"alert": [alert_id, sequence, body["status"],
                                             body["rule_id"]]}))  # fmt: skip
    for key, body in sorted(outputs.kpis.items()):
        lines.append(orjson.dumps({"kpi_key": key, **body}, option=dump))
    return lines


def write(path: Path, outputs: Outputs) -> None:
    """Write ``outputs`` canonically (sorted gzip JSON lines, no timestamp in the gzip
    header, so the same outputs give the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(_lines(outputs)) + b"\n"
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def read(path: Path) -> Outputs:
    outputs = Outputs()
    for raw in gzip.decompress(path.read_bytes()).splitlines():
        doc = orjson.loads(raw)
        if "header" in doc:
            outputs.header = doc["header"]
            outputs.conflicts = list(doc["header"].get("conflicts", []))
        elif "alert" in doc:
            alert_id, sequence, status, rule_id = doc["alert"]
            outputs.alerts[(alert_id, int(sequence))] = {"status": status, "rule_id": rule_id}
        else:
            outputs.kpis[doc.pop("kpi_key")] = doc
    return outputs


@dataclass(frozen=True)
class Difference:
    """One difference: ``kind`` is ``input``, ``alert_changed|missing|extra``,
    ``kpi_changed|missing|extra`` or ``conflict``; missing = in the golden file only."""

    kind: str
    key: str
    expected: Any = None
    actual: Any = None

    def describe(self) -> str:
        if self.kind.endswith("_missing"):
            return f"{self.kind}: {self.key} (golden: {_short(self.expected)})"
        if self.kind.endswith("_extra"):
            return f"{self.kind}: {self.key} (now: {_short(self.actual)})"
        old, new = _short(self.expected), _short(self.actual)
        return f"{self.kind}: {self.key}: golden {old} != now {new}"


def _short(value: Any, limit: int = 240) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _changed_fields(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> dict[str, Any]:
    names = sorted(set(expected) | set(actual))
    return {n: expected.get(n) for n in names if expected.get(n) != actual.get(n)}


def compare(golden: Outputs, now: Outputs) -> list[Difference]:
    """Every difference between the golden outputs and a new run's, in a stable order."""
    diffs: list[Difference] = []
    for name in INPUT_KEYS:
        if golden.header.get(name) != now.header.get(name):
            diffs.append(Difference("input", name, golden.header.get(name), now.header.get(name)))
    for conflict in now.conflicts:
        diffs.append(Difference("conflict", conflict))
    for key in sorted(set(golden.alerts) | set(now.alerts)):
        shown = f"{key[0]}#{key[1]}"
        old, new = golden.alerts.get(key), now.alerts.get(key)
        if new is None:
            diffs.append(Difference("alert_missing", shown, expected=old))
        elif old is None:
            diffs.append(Difference("alert_extra", shown, actual=new))
        elif old != new:
            diffs.append(Difference("alert_changed", shown, old, new))
    for kpi_key in sorted(set(golden.kpis) | set(now.kpis)):
        old_k, new_k = golden.kpis.get(kpi_key), now.kpis.get(kpi_key)
        if new_k is None:
            diffs.append(Difference("kpi_missing", kpi_key, expected=old_k))
        elif old_k is None:
            diffs.append(Difference("kpi_extra", kpi_key, actual=new_k))
        elif old_k != new_k:
            changed = _changed_fields(old_k, new_k)
            diffs.append(
                Difference("kpi_changed", kpi_key, changed, {n: new_k.get(n) for n in changed})
            )
    return diffs


def summary(golden: Outputs, now: Outputs, diffs: list[Difference], first: int = 20) -> str:
    """Counts per kind, then the first ``first`` differences."""
    lines = [
        f"golden: {len(golden.alerts)} alerts, {len(golden.kpis)} KPI keys; "
        f"now: {len(now.alerts)} alerts, {len(now.kpis)} KPI keys",
    ]
    if not diffs:
        lines.append("identical: same alerts (alert_id, sequence, status) and KPI snapshots")
        return "\n".join(lines)
    counts = Counter(d.kind for d in diffs)
    lines.append(
        f"{len(diffs)} differences: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    )
    by_rule = Counter(
        (d.expected or d.actual or {}).get("rule_id", "?")
        for d in diffs
        if d.kind.startswith("alert_") and isinstance(d.expected or d.actual, dict)
    )
    if by_rule:
        lines.append("alert differences per rule: " + ", ".join(
            f"{rule} {n}" for rule, n in by_rule.most_common()))  # fmt: skip
    lines.extend("  " + d.describe() for d in diffs[:first])
    if len(diffs) > first:
        lines.append(f"  … and {len(diffs) - first} more")
    return "\n".join(lines)
