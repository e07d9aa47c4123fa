"""The rules the benchmarked worker runs: everything in ``rules/``, plus those parity rules
(``benchmarks/rules/parity.yaml``, the checks the peer job does) that ``rules/`` lacks."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from streams.rules.loader import load_paths

PARITY_FILE = Path(__file__).resolve().parent / "rules" / "parity.yaml"


def signature(rule: Any) -> tuple[str, ...]:
    """What a rule checks, ignoring its id and wording: type, entity, and for transitions
    the field and kind of movement."""
    entity = rule.applies_to.entity.value
    if rule.type == "transition":
        return (rule.type, entity, rule.field, rule.change)
    return (rule.type, entity)


def missing_parity(existing: Iterable[Any], parity: Iterable[Any]) -> list[str]:
    """Ids of the parity rules whose check no enabled existing rule already does."""
    covered = {signature(rule) for rule in existing if rule.enabled}
    return [rule.id for rule in parity if signature(rule) not in covered]


def assemble(rules_dir: Path, dest: Path) -> tuple[list[str], list[str]]:
    """Copy ``rules_dir`` to ``dest`` and add the missing parity rules there.

    Returns (ids of every rule the worker will load, ids of the parity rules added)."""
    if dest.exists():
        shutil.rmtree(dest)
    if rules_dir.exists():
        shutil.copytree(rules_dir, dest)
    else:
        dest.mkdir(parents=True)
    existing = load_paths([rules_dir]).rules if rules_dir.exists() else []
    parity = load_paths([PARITY_FILE]).rules
    added = missing_parity([r.rule for r in existing], [r.rule for r in parity])
    if added:
        doc = yaml.safe_load(PARITY_FILE.read_text())
        doc["rules"] = [rule for rule in doc["rules"] if rule["id"] in added]
        (dest / "zz-bench-parity.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    loaded = load_paths([dest])
    if loaded.problems:
        raise ValueError("rule pack refused: " + "; ".join(map(str, loaded.problems)))
    return [r.rule.id for r in loaded.rules], added
