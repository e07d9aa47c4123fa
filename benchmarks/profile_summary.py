"""Where a profiled worker spends its time: a py-spy speedscope file summarised by module
and by function, own time (the frame on top of the stack) and total time (anywhere on it).

Pure: it reads the speedscope JSON document (``py-spy record --format speedscope``) and
returns text, so ``tests/unit/test_profile_summary.py`` checks it on a document built by
hand. ``benchmarks/profile_worker.py`` records the profile.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_SITE = re.compile(r"/(?:site|dist)-packages/([^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(.+?)(?:\.py)?$")


def module_of(path: str) -> str:
    """The group a frame's file belongs to: the dotted module of the project's own code
    (``streams.judge.batch``, ``streams.kpis.store``, ``benchmarks.x``), the distribution of
    third-party code (``faust``, ``aiokafka``), the module of the standard library
    (``asyncio``, ``json``), else the file name."""
    site = _SITE.search(path)
    if site:
        name = site.group(1)
        return name[:-3] if name.endswith(".py") else name
    for root in ("streams", "benchmarks"):
        marker = f"/{root}/"
        if marker in path or path.startswith(f"{root}/"):
            tail = path[path.rindex(marker) + 1 :] if marker in path else path
            dotted = tail[:-3] if tail.endswith(".py") else tail
            return dotted.replace("/", ".").removesuffix(".__init__")
    std = _STDLIB.search(path)
    if std:
        return std.group(1).split("/")[0]
    return path.rsplit("/", 1)[-1] or "?"


@dataclass(frozen=True)
class Frame:
    name: str
    file: str
    line: int

    @property
    def module(self) -> str:
        return module_of(self.file)

    @property
    def function(self) -> Function:
        return Function(self.name, self.file)


@dataclass(frozen=True)
class Function:
    """A function: its frames at every line it was sampled at, counted together."""

    name: str
    file: str

    def label(self) -> str:
        short = self.file
        for marker in ("/site-packages/", "/lib/python3.11/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        for root in ("/streams/", "/benchmarks/"):
            if root in short:
                short = short[short.rindex(root) + 1 :]
        return f"{self.name} ({short})"


@dataclass
class Profile:
    """One thread's samples: stacks of frames (outermost first) with their weights."""

    name: str
    stacks: list[tuple[list[Frame], float]]
    #: unit of the weights (py-spy: seconds, 1 / rate per sample)
    unit: str = "samples"

    @property
    def total(self) -> float:
        return sum(w for _, w in self.stacks)


def read_speedscope(doc: Mapping[str, Any]) -> list[Profile]:
    """The profiles (one per thread) of a speedscope document, sampled type only."""
    frames = [
        Frame(f.get("name", "?"), f.get("file", "?"), int(f.get("line") or 0))
        for f in doc["shared"]["frames"]
    ]
    out = []
    for prof in doc["profiles"]:
        if prof.get("type") != "sampled":
            continue
        weights = prof.get("weights") or [1.0] * len(prof["samples"])
        stacks = [
            ([frames[i] for i in s], float(w))
            for s, w in zip(prof["samples"], weights, strict=True)
        ]
        out.append(Profile(prof.get("name", "?"), stacks, prof.get("unit") or "samples"))
    return out


def tallies(profile: Profile) -> dict[str, defaultdict[Any, float]]:
    """Own and total weight per module and per function."""
    own_mod: defaultdict[str, float] = defaultdict(float)
    tot_mod: defaultdict[str, float] = defaultdict(float)
    own_fn: defaultdict[Function, float] = defaultdict(float)
    tot_fn: defaultdict[Function, float] = defaultdict(float)
    for stack, weight in profile.stacks:
        if not stack:
            continue
        leaf = stack[-1]
        own_mod[leaf.module] += weight
        own_fn[leaf.function] += weight
        for module in {f.module for f in stack}:  # once per sample, however deep
            tot_mod[module] += weight
        for function in {f.function for f in stack}:
            tot_fn[function] += weight
    return {"own_module": own_mod, "total_module": tot_mod, "own_fn": own_fn, "total_fn": tot_fn}


def _block(title: str, counts: Mapping[Any, float], total: float, top: int) -> list[str]:
    lines = [title]
    for key, weight in sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        label = key.label() if isinstance(key, Function) else str(key)
        lines.append(f"  {100 * weight / total:5.1f} %  {label}")
    return lines


def summarise(profiles: Sequence[Profile], top: int = 25) -> str:
    """Text summary of the busiest thread (the worker's event loop), with the share of
    samples per thread first."""
    if not profiles:
        return "no samples"
    busiest = max(profiles, key=lambda p: p.total)
    every = sum(p.total for p in profiles)
    lines = ["busy samples per thread (idle left out): " + ", ".join(
        f"{p.name} {len(p.stacks):,} = {p.total:,.1f} {p.unit} ({100 * p.total / every:.0f} %)"
        for p in profiles)]  # fmt: skip
    t = tallies(busiest)
    total = busiest.total or 1.0
    lines.append(f"shares of thread {busiest.name}'s busy samples:")
    lines += _block("by module, own time:", t["own_module"], total, top)
    lines += _block("by module, total time (on the stack):", t["total_module"], total, top)
    lines += _block("functions by own time:", t["own_fn"], total, top)
    lines += _block("functions by total time:", t["total_fn"], total, top)
    return "\n".join(lines)
