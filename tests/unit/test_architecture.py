"""The shape of the code: package layers, no import cycle, small modules.

* The import contracts of ``pyproject.toml`` (``[tool.importlinter]``: the layers of
  ARCHITECTURE.md, pure logic free of Faust, Kafka clients, agents, runtime and app, no
  cycle between sibling packages at any depth) are checked by import-linter, one test per
  contract.
* No cycle between two modules of ``streams`` (grimp's import graph, every direct import
  checked for a way back).
* No module of ``streams`` over :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "streams"
#: Longest module allowed (lines, as ``wc -l`` counts them).
MAX_LINES = 400


def contract_ids() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [c["id"] for c in config["tool"]["importlinter"]["contracts"]]


def test_the_contracts_cover_layers_purity_and_cycles() -> None:
    assert contract_ids() == ["layers", "pure-logic", "acyclic"]


@pytest.mark.parametrize("contract", contract_ids())
def test_import_contract_is_kept(contract: str) -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache", "--no-logo", "--contract", contract, "pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken." in report, report
    assert done.returncode == 0, report


def module_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """For each direct import ``a -> b`` inside ``streams`` with a way back from ``b`` to
    ``a``: the cycle (one per distinct set of modules)."""
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        if not importer.startswith("streams"):
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if not imported.startswith("streams") or imported == importer:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycle = (importer, *back)
                found.setdefault(frozenset(cycle), cycle)
    return sorted(found.values())


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("streams", cache_dir=None)
    cycles = module_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("streams", "streams.a", "streams.b", "streams.c"):
        graph.add_module(name)
    graph.add_import(importer="streams.a", imported="streams.b")
    graph.add_import(importer="streams.b", imported="streams.c")
    assert module_cycles(graph) == []
    graph.add_import(importer="streams.c", imported="streams.a")
    assert module_cycles(graph) == [("streams.a", "streams.b", "streams.c", "streams.a")]


def line_counts() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_bytes().splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_module_over_400_lines() -> None:
    counts = line_counts()
    assert len(counts) > 50  # the walk found the package
    too_long = {path: n for path, n in counts.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by concern): {too_long}"
