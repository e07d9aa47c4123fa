"""The two jobs CRM Pulse is measured on, in the same run:

* **parity**: the peer's job, like for like: only the three checks the Quix Streams job
  does (``benchmarks/rules/parity.yaml``) and the KPI catalog reduced to ``deals_won``
  (the peer sums won value per owner);
* **full**: the production pack: every rule of ``rules/`` (plus the parity rules it lacks)
  and the full KPI catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from benchmarks.rulepack import assemble
from streams.kpis.catalog import load_catalog

#: The KPIs of the parity job: the peer keeps one sum, won value per owner.
PARITY_KPIS = ("deals_won",)
MODES = ("parity", "full")


@dataclass(frozen=True)
class Mode:
    name: str
    rules_dir: Path
    rules: list[str]
    parity_added: list[str]
    kpis: list[str]
    #: worker settings of the mode (the reduced catalog), under the user's --worker-env
    env: dict[str, str] = field(default_factory=dict)


def reduced_catalog(text: str, keep: Iterable[str]) -> str:
    """The catalog YAML ``text`` with only the KPIs ``keep`` (params, windows and
    dimensions unchanged); refuses an id the catalog does not define."""
    doc = yaml.safe_load(text)
    wanted = list(keep)
    known = [kpi["id"] for kpi in doc["kpis"]]
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise ValueError(f"KPIs not in the catalog: {unknown}")
    doc["kpis"] = [kpi for kpi in doc["kpis"] if kpi["id"] in wanted]
    return yaml.safe_dump(doc, sort_keys=False)


def prepare(repo_rules: Path, work: Path) -> dict[str, Mode]:
    """Rule folders and catalog of both modes under ``work``."""
    full_rules, full_added = assemble(repo_rules, work / "rules-full")
    parity_rules, _ = assemble(work / "no-rules", work / "rules-parity")
    text = resources.files("streams.kpis").joinpath("catalog.yaml").read_text()
    catalog = work / "catalog-parity.yaml"
    catalog.write_text(reduced_catalog(text, PARITY_KPIS))
    load_catalog(catalog)  # the worker must accept it: fail here, not in the worker
    full_kpis = [kpi["id"] for kpi in yaml.safe_load(text)["kpis"]]
    return {
        "parity": Mode(
            "parity",
            work / "rules-parity",
            parity_rules,
            parity_rules,
            list(PARITY_KPIS),
            {"CRM_PULSE_KPI_CATALOG": str(catalog)},
        ),
        "full": Mode("full", work / "rules-full", full_rules, full_added, full_kpis),
    }
