"""``crm-pulse sources test|list``: check a source's translation offline, list the sources.

``sources test --source ID FILE`` runs the payloads of FILE (one JSON document, or one per
line; ``-`` reads stdin) through the same translator the worker runs: events as JSON lines
on stdout, refusals as JSON lines ``{"reason": ..., "detail": ...}`` on stderr, Salesforce
gaps as ``{"gap": ..., ...}`` and a last ``{"summary": ...}`` line on stderr too. Exit
code 0 when every input translated, 3 when any was refused, 1 for an invalid sources
file, 2 for a usage error. Request signatures are not checked (there is no request).

``sources list`` prints the configured sources, and the counters of a running worker's
``/metrics`` (samples named ``crm_pulse_source*`` with a ``source`` label) when it
answers; it says so when it does not.
"""

from __future__ import annotations

import argparse
import re
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from streams.settings import Settings

EXIT_REFUSED = 3
EXIT_CONFIG = 1
EXIT_USAGE = 2
_SAMPLE = re.compile(r"^(crm_pulse_source\w*)\{([^}]*)\}\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def read_inputs(data: bytes) -> list[bytes]:
    """The payloads of a file: the whole file when it is one JSON document, else its
    non-blank lines."""
    text = data.strip()
    if not text:
        return []
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [text]


def _sources_file(args: argparse.Namespace, settings: Settings) -> Path | None:
    path = args.sources_file or settings.sources_file
    return Path(path) if path else None


def _load(args: argparse.Namespace, settings: Settings, err: TextIO) -> Any:
    from streams.sources.config import SourceConfigError, load_sources

    path = _sources_file(args, settings)
    if path is None:
        print("error: no sources file: set CRM_PULSE_SOURCES_FILE or pass --sources-file",
              file=err)  # fmt: skip
        return EXIT_USAGE
    try:
        return load_sources(path)
    except SourceConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=err)
        return EXIT_CONFIG


def run_test(
    args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:  # fmt: skip
    from streams.decode import DecodeLimits
    from streams.sources.registry import build_translator

    config = _load(args, settings, err)
    if isinstance(config, int):
        return config
    source = config.get(args.source)
    if source is None:
        print(f"error: no source {args.source!r} in {config.path} "
              f"(sources: {', '.join(config.ids) or 'none'})", file=err)  # fmt: skip
        return EXIT_USAGE
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc}", file=err)
        return EXIT_USAGE
    translator = build_translator(source, DecodeLimits.from_settings(settings))
    totals = {"inputs": 0, "events": 0, "refused": 0, "gaps": 0, "skipped": 0}
    for raw in read_inputs(data):
        totals["inputs"] += 1
        result = translator.translate(raw, received_at=datetime.now(UTC))
        for event in result.events:
            out.write(event.model_dump_json(exclude_defaults=False) + "\n")
        for refusal in result.refusals:
            err.write(orjson.dumps(refusal.as_json()).decode() + "\n")
        for gap in result.gaps:
            doc = {"gap": gap.change_type, "object": gap.crm_object,
                   "entity": gap.entity.value if gap.entity else None,
                   "ids": list(gap.entity_ids), "detail": gap.detail}  # fmt: skip
            err.write(orjson.dumps(doc).decode() + "\n")
        totals["events"] += len(result.events)
        totals["refused"] += len(result.refusals)
        totals["gaps"] += len(result.gaps)
        totals["skipped"] += result.skipped
    err.write(orjson.dumps({"summary": totals}).decode() + "\n")
    return EXIT_REFUSED if totals["refused"] else 0


def source_counters(text: str) -> dict[str, dict[str, float]]:
    """source id -> {metric name (with its other labels) -> value} from a /metrics text."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group(2)))
        source = labels.pop("source", None)
        if source is None:
            continue
        name = match.group(1)
        if labels:
            name += "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
        try:
            found[source][name] = float(match.group(3))
        except ValueError:
            continue
    return found


def _transport(source: Any) -> str:
    transport = source.transport
    if transport.kind == "topic":
        return "topics " + ", ".join(transport.topics)
    return f"POST /sources/{source.id}"


def run_list(
    args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:  # fmt: skip
    config = _load(args, settings, err)
    if isinstance(config, int):
        return config
    url = args.metrics_url or f"http://{settings.web_host}:{settings.web_port}/metrics"
    counters: dict[str, dict[str, float]] | None
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            counters = source_counters(response.read().decode("utf-8", "replace"))
        status = f"counters from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        counters = None
        reason = getattr(exc, "reason", exc)
        status = f"no counters: no worker answered at {url} ({reason})"
    print(f"{len(config.sources)} source(s) in {config.path}; {status}", file=out)
    for source in config.sources:
        state = "" if source.enabled else " (disabled)"
        objects = ", ".join(sorted(source.mapping.objects)) or "-"
        print(f"{source.id}{state}  type {source.type}  {_transport(source)}", file=out)
        print(f"    objects: {objects}", file=out)
        if counters is not None:
            values = counters.get(source.id, {})
            shown = ", ".join(f"{k} {v:g}" for k, v in sorted(values.items())) or "none yet"
            print(f"    counters: {shown}", file=out)
    return 0


def add_commands(sub: Any) -> None:
    """``sources test`` and ``sources list`` under the main parser's subcommands."""
    sources = sub.add_parser("sources", help="test a source's translation offline, list sources")
    ssub = sources.add_subparsers(dest="sources_command", required=True)
    p = ssub.add_parser(
        "test", help="translate raw payloads (one JSON document, or one per line) offline"
    )
    p.add_argument("--source", required=True, help="source id of the sources file")
    p.add_argument("--sources-file", help="default: CRM_PULSE_SOURCES_FILE")
    p.add_argument("file", help="payload file (- for stdin)")
    p.set_defaults(func=run_test)
    p = ssub.add_parser("list", help="configured sources and a running worker's counters")
    p.add_argument("--sources-file", help="default: CRM_PULSE_SOURCES_FILE")
    p.add_argument("--metrics-url", help="default: http://WEB_HOST:WEB_PORT/metrics")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for /metrics")
    p.set_defaults(func=run_list)
