"""``crm-pulse``: the command line of CRM Pulse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from streams.commands.kpis import add_kpi_commands
from streams.settings import Settings


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import ExitWatchdog, install_early_signal_handlers, run_worker

    watchdog = ExitWatchdog(settings.shutdown_grace_s)
    install_early_signal_handlers(watchdog)  # SIGTERM works from the first instant

    from streams.app import create_app
    from streams.gc_policy import apply_gc_policy, freeze_startup_objects

    asyncio.run(wait_for_broker(settings))
    pulse = create_app(settings)
    thresholds = apply_gc_policy(settings)
    frozen = freeze_startup_objects()
    logging.getLogger(__name__).info(
        "garbage collector thresholds %s, %d start-up objects frozen", thresholds, frozen
    )
    run_worker(pulse, watchdog, settings.log_level)


async def wait_for_broker(settings: Settings, retry_s: float = 2.0) -> None:
    """Create the missing topics, waiting (and saying so) until the broker answers."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

    from streams.runtime.topics import ensure_topics

    log = logging.getLogger(__name__)
    while True:
        try:
            await ensure_topics(settings)
            return
        except (KafkaConnectionError, KafkaTimeoutError, TimeoutError, OSError) as exc:
            log.warning(
                "broker %s not reachable (%s: %s); retrying in %gs",
                settings.bootstrap_servers, type(exc).__name__, exc, retry_s,
            )  # fmt: skip
        await asyncio.sleep(retry_s)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    if args.source == "postgres":  # PostgreSQL -> Debezium -> worker (streams/demo_postgres.py)
        from streams.demo_postgres import run_postgres_demo

        return run_postgres_demo(settings, duration=args.duration)
    from streams.demo import run_demo

    return run_demo(settings, rate=args.rate, duration=args.duration, kafka_port=args.kafka_port)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.simulator import run

    sent = asyncio.run(
        run(settings, settings.events_topic, rate=args.rate, count=args.count,
            seed=args.seed)
    )  # fmt: skip
    print(f"sent {sent} events to {settings.events_topic}")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.runtime.topics import ensure_topics

    created = asyncio.run(ensure_topics(settings))
    print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
    return 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from streams.schemas import export_schemas

    for path in export_schemas(Path(args.out)):
        print(path)
    return 0


def _rules_validate(args: argparse.Namespace, settings: Settings) -> int:
    from streams.rules.loader import load_paths

    paths = [Path(p) for p in args.paths] or [settings.rules_dir]
    result = load_paths(paths)
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    from streams.rules.lint import rule_warnings

    warnings = 0
    for loaded in result.rules:
        for field, message in rule_warnings(loaded.rule):
            warnings += 1
            print(f"warning: {loaded.source}:{loaded.line}: rule {loaded.rule.id!r} "
                  f"field '{field}': {message}", file=sys.stderr)  # fmt: skip
    print(f"{len(result.rules)} valid rule(s), {len(result.problems)} error(s), "
          f"{warnings} warning(s)")  # fmt: skip
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-pulse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker against the Kafka given by settings/env")
    p.set_defaults(func=_worker)

    p = sub.add_parser("demo", help="local broker + worker + simulator + metrics, one command")
    p.add_argument("--rate", type=float, default=20.0, help="simulated events per second")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--kafka-port", type=int, default=0, help="broker port (default: free)")
    p.add_argument(
        "--source",
        choices=["simulator", "postgres"],
        default="simulator",
        help="postgres: a CRM in PostgreSQL read by Debezium (Kafka Connect)",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("simulate", help="produce realistic CRM change events")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_simulate)

    p = sub.add_parser("topics", help="create the missing public topics (idempotent)")
    p.set_defaults(func=_topics)

    p = sub.add_parser("schemas", help="export the JSON Schemas of the public contracts")
    p.add_argument("--out", default="schemas")
    p.set_defaults(func=_schemas)

    add_kpi_commands(sub)  # replay, kpis show

    from streams.notify.cli import add_commands as add_notify_commands

    add_notify_commands(sub)  # notify

    rules = sub.add_parser("rules", help="validate, apply, list, diff and test rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    p = rsub.add_parser("validate", help="check rule files offline (file, line, field)")
    p.add_argument("paths", nargs="*")
    p.set_defaults(func=_rules_validate)
    from streams.commands.rules import add_parsers

    add_parsers(rsub)

    from streams.commands.alerts import add_commands as add_alerting_commands

    add_alerting_commands(sub)

    from streams.cli_sources import add_commands as add_sources_commands

    add_sources_commands(sub)  # sources test, sources list
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    code: int = args.func(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
