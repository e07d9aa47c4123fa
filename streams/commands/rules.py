"""``crm-pulse rules apply|list|diff|test``: the admin side of live rules.

``apply`` validates every file first and publishes nothing if anything is wrong; then it
publishes only added and changed rules (and, with ``--prune``, tombstones for live rules
absent from the files) and reports each rule's fate.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import logging
import sys
from pathlib import Path

import yaml

from streams.rules.catalog import PlanItem, plan_apply, rule_document, to_publish
from streams.rules.loader import LoadResult, load_paths
from streams.rules.model import Rule
from streams.rules.ruleset import CompiledRule, RuleSet, compile_rule
from streams.runtime.rules_topic import publish, read_catalog
from streams.settings import Settings


def _load_files(args: argparse.Namespace, settings: Settings) -> LoadResult | None:
    paths = [Path(p) for p in getattr(args, "paths", None) or []] or [settings.rules_dir]
    result = load_paths(paths)
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not result.ok:
        print(f"{len(result.problems)} error(s): nothing applied", file=sys.stderr)
        return None
    return result


async def _live_rules(settings: Settings) -> tuple[dict[str, Rule], list[str]]:
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # keep the CLI output readable
    catalog, rejected = await read_catalog(settings)
    return {rid: c.rule for rid, c in catalog.rules.items()}, rejected


def _plan_line(item: PlanItem) -> str:
    if item.action == "changed" and item.rule is not None and item.live is not None:
        return f"changed    {item.rule_id} (version {item.live.version} -> {item.rule.version})"
    if item.action == "live-only":
        return f"live-only  {item.rule_id} (not in the files; --prune deletes it)"
    return f"{item.action:<10} {item.rule_id}"


def apply(args: argparse.Namespace, settings: Settings) -> int:
    loaded = _load_files(args, settings)
    if loaded is None:
        return 1
    live, _ = asyncio.run(_live_rules(settings))
    plan = plan_apply([r.rule for r in loaded.rules], live, prune=args.prune)
    records = to_publish(plan)
    if not args.dry_run:
        asyncio.run(publish(settings, records))
    for item in plan:
        print(_plan_line(item))
    counts = {a: sum(1 for i in plan if i.action == a) for a in
              ("added", "changed", "unchanged", "deleted", "live-only")}  # fmt: skip
    verb = "would publish" if args.dry_run else "published"
    print(
        f"{verb} {len(records)} record(s) to {settings.rules_topic}: "
        + ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    )
    return 0


def list_rules(args: argparse.Namespace, settings: Settings) -> int:
    live, rejected = asyncio.run(_live_rules(settings))
    print(f"{'id':<45} {'ver':>3} {'type':<16} {'severity':<8} {'entity':<8} enabled")
    for rid, rule in sorted(live.items()):
        print(
            f"{rid:<45} {rule.version:>3} {rule.type:<16} {rule.severity.value:<8} "
            f"{rule.applies_to.entity.value:<8} {'yes' if rule.enabled else 'no'}"
        )
    print(f"{len(live)} live rule(s) on {settings.rules_topic}; version "
          f"{RuleSet.build(_compiled(live)).version}")  # fmt: skip
    for rid in rejected:
        print(f"warning: the last record of {rid!r} on the topic was rejected; the previous "
              "valid version (if any) is live", file=sys.stderr)  # fmt: skip
    return 0


def _compiled(live: dict[str, Rule]) -> list[CompiledRule]:
    return [compile_rule(r) for r in live.values()]


def _yaml(rule: Rule) -> list[str]:
    text = yaml.safe_dump(rule_document(rule), sort_keys=True, allow_unicode=True)
    return text.splitlines(keepends=True)


def diff(args: argparse.Namespace, settings: Settings) -> int:
    loaded = _load_files(args, settings)
    if loaded is None:
        return 1
    live, _ = asyncio.run(_live_rules(settings))
    plan = plan_apply([r.rule for r in loaded.rules], live, prune=False)
    differences = 0
    for item in plan:
        if item.action == "unchanged":
            continue
        differences += 1
        print(_plan_line(item))
        old = _yaml(item.live) if item.live is not None else []
        new = _yaml(item.rule) if item.rule is not None else []
        sys.stdout.writelines(
            difflib.unified_diff(old, new, f"live/{item.rule_id}", f"file/{item.rule_id}")
        )
    print(f"{differences} difference(s) between the files and {settings.rules_topic}")
    return 1 if differences and args.exit_code else 0


def test(args: argparse.Namespace, settings: Settings) -> int:
    from streams.decode import DecodeLimits
    from streams.judge.dryrun import run_events

    if args.live:
        live, _ = asyncio.run(_live_rules(settings))
        rules = RuleSet.build(_compiled(live))
    else:
        loaded = _load_files(argparse.Namespace(paths=args.rules), settings)
        if loaded is None:
            return 1
        rules = RuleSet.build(r.compiled for r in loaded.rules)
    with open(args.events, "rb") as handle:
        run = run_events(rules, handle, batch_max=settings.batch_max,
                         dedup_window=settings.dedup_window,
                         limits=DecodeLimits.from_settings(settings))  # fmt: skip
    for alert in run.alerts:
        if args.json:
            print(alert.model_dump_json())
        else:
            print(f"{alert.status.value:<9} {alert.severity.value:<8} {alert.rule_id:<40} "
                  f"{alert.subject.id:<14} {alert.message}")  # fmt: skip
    for line, reason, detail in run.refused:
        print(f"refused line {line}: {reason}: {detail}", file=sys.stderr)
    for rid, n in sorted(run.rule_errors.items()):
        print(f"rule {rid} raised on {n} event(s) (isolated)", file=sys.stderr)
    print(f"{run.events} event(s), {len(rules)} rule(s), {len(run.alerts)} alert(s), "
          f"{len(run.refused)} refused line(s)", file=sys.stderr)  # fmt: skip
    return 0


def add_parsers(rsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``apply``, ``list``, ``diff`` and ``test`` under ``crm-pulse rules``."""
    p = rsub.add_parser("apply", help="validate all, then publish changed rules to the topic")
    p.add_argument("paths", nargs="*", help="files or folders (default: the rules folder)")
    p.add_argument("--prune", action="store_true", help="delete live rules absent from files")
    p.add_argument("--dry-run", action="store_true", help="report, publish nothing")
    p.set_defaults(func=apply)
    p = rsub.add_parser("list", help="show the live rules (the rules topic)")
    p.set_defaults(func=list_rules)
    p = rsub.add_parser("diff", help="show files against live rules")
    p.add_argument("paths", nargs="*")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences")
    p.set_defaults(func=diff)
    p = rsub.add_parser("test", help="run rules over a JSONL file of events, offline")
    p.add_argument("events", help="JSONL file, one ChangeEvent per line")
    p.add_argument("--rules", nargs="*", default=[], help="rule files/folders (default: folder)")
    p.add_argument("--live", action="store_true", help="use the live rules from the topic")
    p.add_argument("--json", action="store_true", help="print alerts as AlertEvent JSON lines")
    p.set_defaults(func=test)
