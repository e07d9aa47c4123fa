"""``crm-pulse sources test`` and ``sources list``: outputs and exit codes."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest

from streams.cli import build_parser
from streams.cli_sources import read_inputs, run_list, run_test, source_counters
from streams.settings import Settings
from tests.unit.sourcekit import DATA

SOURCES = str(DATA / "sources.yaml")


def cli(*argv: str) -> tuple[int, list[dict], list[dict]]:  # type: ignore[type-arg]
    args = build_parser().parse_args(["sources", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, Settings(), out, err)
    return (
        code,
        [orjson.loads(x) for x in out.getvalue().splitlines()],
        [orjson.loads(x) for x in err.getvalue().splitlines()],
    )


@pytest.mark.parametrize(
    ("source", "name", "events"),
    [("crm-db", "debezium-postgres.jsonl", 4), ("crm-db", "debezium-mysql.jsonl", 2),
     ("salesforce", "salesforce.jsonl", 7), ("hubspot", "hubspot.json", 13),
     ("pipedrive", "pipedrive.jsonl", 4)],
)  # fmt: skip
def test_each_sample_translates_with_exit_0(source: str, name: str, events: int) -> None:
    code, out, err = cli("test", "--sources-file", SOURCES, "--source", source, str(DATA / name))
    assert code == 0
    assert len(out) == events and all(e["source"] == source for e in out)
    assert err[-1]["summary"]["refused"] == 0 and err[-1]["summary"]["events"] == events


def test_salesforce_gaps_go_to_stderr_not_stdout() -> None:
    _, out, err = cli("test", "--sources-file", SOURCES, "--source", "salesforce",
                      str(DATA / "salesforce.jsonl"))  # fmt: skip
    gaps = [line for line in err if "gap" in line]
    assert [g["gap"] for g in gaps] == ["GAP_UPDATE", "GAP_OVERFLOW"]
    assert all("gap" not in e for e in out)


def test_a_malformed_payload_is_refused_with_exit_3() -> None:
    code, out, err = cli("test", "--sources-file", SOURCES, "--source", "salesforce",
                         str(DATA / "malformed.jsonl"))  # fmt: skip
    assert code == 3
    assert [e["entity_id"] for e in out] == ["006X"]
    refusals = [line for line in err if "reason" in line]
    assert [r["reason"] for r in refusals] == ["invalid_json", "unknown_object"]
    assert all(set(r) == {"reason", "detail"} for r in refusals)


def test_usage_and_config_errors(tmp_path: Path) -> None:
    args = build_parser().parse_args(["sources", "test", "--sources-file", SOURCES, "--source",
                                      "nope", str(DATA / "hubspot.json")])  # fmt: skip
    errors = io.StringIO()
    assert run_test(args, Settings(), io.StringIO(), errors) == 2
    assert "no source 'nope'" in errors.getvalue() and "crm-db, salesforce" in errors.getvalue()
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - id: x\n    type: zoho\n")
    args = build_parser().parse_args(["sources", "test", "--sources-file", str(bad), "--source",
                                      "x", str(DATA / "hubspot.json")])  # fmt: skip
    errors = io.StringIO()
    assert run_test(args, Settings(), io.StringIO(), errors) == 1
    assert f"{bad}:3:" in errors.getvalue()


def test_read_inputs_one_document_or_lines() -> None:
    assert read_inputs(b'[{"a": 1},\n {"b": 2}]\n') == [b'[{"a": 1},\n {"b": 2}]']
    assert read_inputs(b'{"a": 1}\n\n{"b": 2}\n') == [b'{"a": 1}', b'{"b": 2}']
    assert read_inputs(b"  \n") == []


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (
            b"# TYPE crm_pulse_source_events_total counter\n"
            b'crm_pulse_source_events_total{source="hubspot"} 12.0\n'
            b'crm_pulse_source_refusals_total{reason="invalid_json",source="hubspot"} 1.0\n'
            b'crm_pulse_events_total{source="hubspot"} 99.0\n'
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def test_list_shows_sources_and_a_workers_counters(metrics_url: str) -> None:
    args = build_parser().parse_args(["sources", "list", "--sources-file", SOURCES,
                                      "--metrics-url", metrics_url])  # fmt: skip
    out = io.StringIO()
    assert run_list(args, Settings(), out, io.StringIO()) == 0
    text = out.getvalue()
    assert f"counters from {metrics_url}" in text
    assert "hubspot  type hubspot_webhook  POST /sources/hubspot" in text
    assert "crm_pulse_source_events_total 12" in text
    assert "crm_pulse_source_refusals_total{reason=invalid_json} 1" in text
    assert "crm_pulse_events_total" not in text
    assert "salesforce  type salesforce_cdc  topics salesforce.cdc" in text


def test_list_says_when_no_worker_answers() -> None:
    args = build_parser().parse_args(["sources", "list", "--sources-file", SOURCES,
                                      "--metrics-url", "http://127.0.0.1:9/metrics",
                                      "--timeout", "0.5"])  # fmt: skip
    out = io.StringIO()
    assert run_list(args, Settings(), out, io.StringIO()) == 0
    assert "no counters: no worker answered at http://127.0.0.1:9/metrics" in out.getvalue()
    assert "counters:" not in out.getvalue().split("\n", 1)[1]


def test_source_counters_parse_only_source_metrics() -> None:
    found = source_counters('crm_pulse_source_gaps_total{source="sf",object="Lead"} 2\nx 1\n')
    assert found == {"sf": {"crm_pulse_source_gaps_total{object=Lead}": 2.0}}


def test_stdout_is_the_translators_output_in_order() -> None:
    from tests.unit.sourcekit import NOW, lines, translator

    _, out, _ = cli("test", "--sources-file", SOURCES, "--source", "pipedrive",
                    str(DATA / "pipedrive.jsonl"))  # fmt: skip
    direct = [e for raw in lines("pipedrive.jsonl")
              for e in translator("pipedrive").translate(raw, received_at=NOW).events]  # fmt: skip
    assert [e["event_id"] for e in out] == [e.event_id for e in direct]
    assert [(e["entity"], e["op"], e["fields"].get("stage")) for e in out] == [
        ("deal", "create", "Prospecting"), ("deal", "update", "Proposal"),
        ("deal", "update", "Won"), ("contact", "delete", None),
    ]  # fmt: skip
