"""Helpers of the source tests: the test sources file, its translators and sample payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from streams.sources.base import Translation, Translator
from streams.sources.config import SourcesConfig, load_sources
from streams.sources.registry import build_translator

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "sources"
#: the time the sample payloads are received (they happened on 2026-03-02 from 09:00 UTC)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@cache
def config() -> SourcesConfig:
    return load_sources(DATA / "sources.yaml")


def translator(source_id: str) -> Translator:
    source = config().get(source_id)
    assert source is not None, source_id
    return build_translator(source)


def lines(name: str) -> list[bytes]:
    return [line for line in (DATA / name).read_bytes().splitlines() if line.strip()]


def docs(name: str) -> list[Any]:
    return [orjson.loads(line) for line in lines(name)]


def run(source_id: str, payload: Any) -> Translation:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return translator(source_id).translate(raw, received_at=NOW)
