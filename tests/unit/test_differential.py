"""The differential check's pure part (benchmarks/golden.py): canonical outputs, their file,
and a comparison that finds every changed, missing or extra alert and KPI snapshot."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Any

import orjson

from benchmarks import golden
from benchmarks.differential import event_times_ms, fingerprint
from benchmarks.events import generate


def _alert(alert_id: str, sequence: int, status: str, rule: str = "r1") -> bytes:
    return orjson.dumps({"alert_id": alert_id, "sequence": sequence, "status": status,
                         "rule_id": rule, "fired_at": "2026-01-05T08:00:00+00:00"})  # fmt: skip


def _snapshot(kpi: str, value: float | None, computed_at: str = "2026-11-29T10:00:00+00:00",
              trust: float = 1.0) -> bytes:  # fmt: skip
    return orjson.dumps({
        "schema_version": 1, "kpi": kpi, "scope": {"kind": "global", "id": "all"},
        "window": {"kind": "day", "start": "2026-01-05T00:00:00+00:00",
                   "end": "2026-01-06T00:00:00+00:00"},
        "dimensions": {}, "value": value, "unit": "count", "sample_size": 3,
        "trust": {"value": trust, "reasons": [{"name": "sample_size", "value": trust,
                                                "detail": "3 inputs"}]},
        "untrusted": False, "watermark": computed_at, "computed_at": computed_at,
    })  # fmt: skip


def _outputs() -> golden.Outputs:
    alerts, conflicts = golden.alerts_of(
        [_alert("a1", 1, "FIRING"), _alert("a1", 2, "RESOLVED"), _alert("b2", 1, "FIRING", "r2"),
         _alert("a1", 1, "FIRING")]  # a redelivery counts once
    )  # fmt: skip
    kpis = golden.final_kpis(
        [
            (b"deals_won|global:all|day|2026-01-05", _snapshot("deals_won", 1.0)),
            (b"deals_won|global:all|day|2026-01-05", _snapshot("deals_won", 2.0)),
            (b"win_rate|global:all|day|2026-01-05", _snapshot("win_rate", 0.5)),
            (b"gone|global:all|day|2026-01-05", _snapshot("gone", 9.0)),
            (b"gone|global:all|day|2026-01-05", None),  # tombstone
        ]
    )
    header = {"events": 3, "seed": 7, "deals": 1, "owners": 1, "partitions": 4,
              "stream_sha256": "abc", "rules": ["r1", "r2"], "kpis": ["deals_won"]}  # fmt: skip
    return golden.Outputs(header, alerts, kpis, conflicts)


def test_canonical_outputs_keep_one_alert_per_key_and_the_last_snapshot_per_kpi_key() -> None:
    out = _outputs()
    assert out.alerts == {
        ("a1", 1): {"status": "FIRING", "rule_id": "r1"},
        ("a1", 2): {"status": "RESOLVED", "rule_id": "r1"},
        ("b2", 1): {"status": "FIRING", "rule_id": "r2"},
    }
    assert out.conflicts == []
    assert sorted(out.kpis) == ["deals_won|global:all|day|2026-01-05",
                                "win_rate|global:all|day|2026-01-05"]  # fmt: skip
    won = out.kpis["deals_won|global:all|day|2026-01-05"]
    assert won["value"] == 2.0
    assert "computed_at" not in won and "watermark" not in won


def test_an_alert_published_twice_with_different_content_is_a_conflict() -> None:
    _, conflicts = golden.alerts_of([_alert("a1", 1, "FIRING"), _alert("a1", 1, "RESOLVED")])
    assert len(conflicts) == 1 and conflicts[0].startswith("a1#1")


def test_the_file_is_canonical_and_reads_back(tmp_path: Path) -> None:
    out = _outputs()
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    golden.write(first, out)
    shuffled = golden.Outputs(
        dict(reversed(list(out.header.items()))),
        dict(reversed(list(out.alerts.items()))),
        dict(reversed(list(out.kpis.items()))),
    )
    golden.write(second, shuffled)
    assert first.read_bytes() == second.read_bytes()  # sorted, no gzip time stamp
    lines = gzip.decompress(first.read_bytes()).splitlines()
    assert len(lines) == 1 + 3 + 2
    back = golden.read(first)
    assert back.alerts == out.alerts and back.kpis == out.kpis
    assert back.header["alerts"] == 3 and back.header["kpi_keys"] == 2
    assert golden.compare(out, back) == []


def test_identical_outputs_compare_equal_whatever_the_computation_time() -> None:
    out = _outputs()
    later = golden.final_kpis(
        [(b"deals_won|global:all|day|2026-01-05",
          _snapshot("deals_won", 2.0, computed_at="2027-01-01T00:00:00+00:00")),
         (b"win_rate|global:all|day|2026-01-05", _snapshot("win_rate", 0.5))]
    )  # fmt: skip
    now = golden.Outputs(dict(out.header), dict(out.alerts), later)
    diffs = golden.compare(out, now)
    assert diffs == []
    assert "identical" in golden.summary(out, now, diffs)


def _kinds(diffs: list[golden.Difference]) -> list[tuple[str, str]]:
    return [(d.kind, d.key) for d in diffs]


def test_compare_finds_a_changed_a_missing_and_an_extra_alert() -> None:
    out = _outputs()
    now = copy.deepcopy(out)
    now.alerts[("a1", 2)] = {"status": "ESCALATED", "rule_id": "r1"}  # changed status
    del now.alerts[("b2", 1)]  # missing
    now.alerts[("c3", 1)] = {"status": "FIRING", "rule_id": "r3"}  # extra
    diffs = golden.compare(out, now)
    assert _kinds(diffs) == [("alert_changed", "a1#2"), ("alert_missing", "b2#1"),
                             ("alert_extra", "c3#1")]  # fmt: skip
    text = golden.summary(out, now, diffs, first=2)
    assert "3 differences: alert_changed 1, alert_extra 1, alert_missing 1" in text
    assert "ESCALATED" in text and "… and 1 more" in text


def test_compare_finds_a_changed_a_missing_and_an_extra_kpi_snapshot() -> None:
    out = _outputs()
    now = copy.deepcopy(out)
    now.kpis["deals_won|global:all|day|2026-01-05"]["trust"]["value"] = 0.9
    del now.kpis["win_rate|global:all|day|2026-01-05"]
    now.kpis["new|global:all|all"] = {"value": 1.0}
    diffs = golden.compare(out, now)
    assert _kinds(diffs) == [
        ("kpi_changed", "deals_won|global:all|day|2026-01-05"),
        ("kpi_extra", "new|global:all|all"),
        ("kpi_missing", "win_rate|global:all|day|2026-01-05"),
    ]
    assert set(diffs[0].expected) == {"trust"}  # only the fields that differ are shown


def test_compare_refuses_outputs_of_another_input_and_reports_conflicts() -> None:
    out = _outputs()
    now = copy.deepcopy(out)
    now.header["stream_sha256"] = "other"
    now.conflicts = ["a1#1: x then y"]
    kinds = [d.kind for d in golden.compare(out, now)]
    assert kinds == ["input", "conflict"]


def test_recorded_stream_is_fixed_timestamps_included() -> None:
    first = generate(2000, deals=100, owners=10, seed=3)
    again = generate(2000, deals=100, owners=10, seed=3)
    stamps = event_times_ms(first)
    assert stamps == event_times_ms(again)
    assert stamps == sorted(stamps) and stamps[1] - stamps[0] == 1000  # one event a second
    assert fingerprint(first, stamps) == fingerprint(again, event_times_ms(again))
    other = generate(2000, deals=100, owners=10, seed=4)
    assert fingerprint(other, event_times_ms(other)) != fingerprint(first, stamps)


def test_a_broken_record_takes_the_previous_event_time() -> None:
    work = generate(3000, deals=100, owners=10, seed=5)
    stamps = event_times_ms(work)
    broken = [i for i, eid in enumerate(work.event_ids) if eid is None and i > 0]
    assert broken
    for i in broken:
        doc: Any
        try:
            doc = orjson.loads(work.values[i])
        except orjson.JSONDecodeError:
            doc = None
        if not (isinstance(doc, dict) and "occurred_at" in doc):
            assert stamps[i] == stamps[i - 1]
