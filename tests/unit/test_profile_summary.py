"""The profile summary (benchmarks/profile_summary.py): modules, own and total time."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.profile_summary import module_of, read_speedscope, summarise, tallies

SITE = "/w/.venv/lib/python3.11/site-packages"


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("/work/wt-bench/streams/judge/batch.py", "streams.judge.batch"),
        ("/work/wt-bench/streams/kpis/store.py", "streams.kpis.store"),
        ("/work/wt-bench/streams/rules/__init__.py", "streams.rules"),
        ("streams/agents/ingest.py", "streams.agents.ingest"),
        (f"{SITE}/faust/transport/consumer.py", "faust"),
        (f"{SITE}/aiokafka/consumer/fetcher.py", "aiokafka"),
        (f"{SITE}/typing_extensions.py", "typing_extensions"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/events.py", "asyncio"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py", "json"),
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/selectors.py", "selectors"),
        ("<frozen runpy>", "<frozen runpy>"),
    ],
)
def test_frames_are_grouped_by_module(path: str, module: str) -> None:
    assert module_of(path) == module


def _doc() -> dict[str, Any]:
    frames = [
        {"name": "run_forever", "file": "/x/lib/python3.11/asyncio/base_events.py", "line": 607},
        {"name": "Engine.process", "file": "/r/streams/judge/batch.py", "line": 150},
        {"name": "Engine._apply", "file": "/r/streams/judge/batch.py", "line": 240},
        {"name": "Engine._apply", "file": "/r/streams/judge/batch.py", "line": 251},
        {"name": "getmany", "file": f"{SITE}/aiokafka/consumer/consumer.py", "line": 10},
    ]
    main = {
        "type": "sampled", "name": "MainThread", "unit": "none", "startValue": 0, "endValue": 10,
        "samples": [[0, 1, 2], [0, 1, 3], [0, 1, 2], [0, 1], [0, 4], [0, 4]],
        "weights": [1, 1, 1, 1, 1, 1],
    }  # fmt: skip
    other = {"type": "sampled", "name": "Thread-1", "samples": [[0]], "weights": [1]}
    seconds = {"type": "sampled", "name": "T", "unit": "seconds", "samples": [[0]] * 3,
               "weights": [0.01] * 3}  # fmt: skip
    return {"shared": {"frames": frames}, "profiles": [main, other, seconds]}


def test_own_time_counts_the_top_frame_and_total_time_each_function_once_per_sample() -> None:
    profiles = read_speedscope(_doc())
    assert [p.name for p in profiles] == ["MainThread", "Thread-1", "T"]
    assert profiles[2].unit == "seconds" and profiles[2].total == pytest.approx(0.03)
    t = tallies(profiles[0])
    assert t["own_module"] == {"streams.judge.batch": 4, "aiokafka": 2}
    assert t["total_module"] == {"asyncio": 6, "streams.judge.batch": 4, "aiokafka": 2}
    own = {f.name: w for f, w in t["own_fn"].items()}
    assert own == {"Engine._apply": 3, "Engine.process": 1, "getmany": 2}  # lines merged
    total = {f.name: w for f, w in t["total_fn"].items()}
    assert total["Engine.process"] == 4 and total["run_forever"] == 6


def test_summary_reads_the_busiest_thread_in_percent() -> None:
    text = summarise(read_speedscope(_doc())[:2])
    assert "MainThread 6 = 6.0 none (86 %), Thread-1 1 = 1.0 samples (14 %)" in text
    lines = text.splitlines()
    own = lines.index("by module, own time:")
    assert lines[own + 1].split() == ["66.7", "%", "streams.judge.batch"]
    assert lines[own + 2].split() == ["33.3", "%", "aiokafka"]
    fn = lines.index("functions by own time:")
    assert lines[fn + 1].strip() == "50.0 %  Engine._apply (streams/judge/batch.py)"
    assert summarise([]) == "no samples"
