"""``crm-pulse alerts tail`` and ``crm-pulse silences add|list|remove``.

Silences are written straight to the compacted ``crm.silences`` topic (the same records
``POST /silences`` writes); every worker reads that topic, so a silence takes effect on
every worker within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import signal
import sys
from datetime import timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.clock import utcnow
from streams.contracts.silences import Silence
from streams.runtime.silences_topic import read_silences, send_silence
from streams.settings import Settings

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from streams.runtime.alerts_topic import tail_alerts

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)
        colour = sys.stdout.isatty() if args.colour == "auto" else args.colour == "always"
        return await tail_alerts(
            settings, settings.alerts_topic, stop, colour,
            from_beginning=not args.new_only, status=args.status, owner=args.owner,
            rule=args.rule,
        )  # fmt: skip

    asyncio.run(run())
    return 0


def _add(args: argparse.Namespace, settings: Settings) -> int:
    now = utcnow()
    try:
        silence = Silence(
            id=args.id or "s-" + secrets.token_hex(6), rule_id=args.rule, owner_id=args.owner,
            team=args.team, subject_id=args.subject, starts_at=now,
            ends_at=now + _DURATION.validate_python(args.duration),
            created_by=args.by or getpass.getuser(), comment=args.comment,
        )  # fmt: skip
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "silence"
            print(f"error: {field}: {error['msg']}", file=sys.stderr)
        return 2
    asyncio.run(send_silence(settings, silence.id, silence.model_dump_json().encode()))
    print(f"silence {silence.id} until {silence.ends_at.isoformat()}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    now = utcnow()
    silences = asyncio.run(read_silences(settings))
    shown = [s for s in silences if args.all or s.ends_at > now]
    if args.json:
        print(orjson.dumps([orjson.loads(s.model_dump_json()) for s in shown]).decode())
        return 0
    for s in shown:
        state = "pending" if now < s.starts_at else "active" if now < s.ends_at else "expired"
        matchers = " ".join(f"{k}={v}" for k, v in (("rule", s.rule_id), ("owner", s.owner_id),
                            ("team", s.team), ("subject", s.subject_id)) if v)  # fmt: skip
        print(f"{s.id:<16} {state:<8} until {s.ends_at.isoformat()}  {matchers}  {s.comment}")
    print(f"{len(shown)} silence(s)")
    return 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(send_silence(settings, args.id, None))
    print(f"silence {args.id} lifted")
    return 0


def add_commands(sub: Any) -> None:
    alerts = sub.add_parser("alerts", help="watch the live alerts")
    asub = alerts.add_subparsers(dest="alerts_command", required=True)
    p = asub.add_parser("tail", help="pretty-print crm.alerts live (colour by severity)")
    p.add_argument("--status", help="only this status (FIRING, RESOLVED, ...)")
    p.add_argument("--owner", help="only alerts of (or escalated to) this owner")
    p.add_argument("--rule", help="only this rule id")
    p.add_argument("--new-only", action="store_true", help="skip the alerts already there")
    p.add_argument("--colour", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.set_defaults(func=_tail)

    silences = sub.add_parser("silences", help="mute alerts for a while (still recorded)")
    ssub = silences.add_subparsers(dest="silences_command", required=True)
    p = ssub.add_parser("add", help="add a time-bounded silence")
    p.add_argument("--rule")
    p.add_argument("--owner")
    p.add_argument("--team")
    p.add_argument("--subject", help="record id or KPI id")
    p.add_argument("--for", dest="duration", required=True, help="ISO 8601 (PT2H) or seconds")
    p.add_argument("--comment", default="")
    p.add_argument("--by", default=None, help="author (default: the current user)")
    p.add_argument("--id", default=None, help="silence id (default: random)")
    p.set_defaults(func=_add)
    p = ssub.add_parser("list", help="list current silences")
    p.add_argument("--all", action="store_true", help="include expired ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_list)
    p = ssub.add_parser("remove", help="lift a silence now")
    p.add_argument("id")
    p.set_defaults(func=_remove)
