"""Profile a real worker under the benchmark's load with py-spy (the ``bench`` extra).

    python benchmarks/profile_worker.py                   # full pack, 100k events
    python benchmarks/profile_worker.py --mode parity --events 50000

Produces the benchmark's events (``benchmarks/events.py``) to a fresh topic on a local
broker, starts a ``crm-pulse worker`` on them (``--mode full``: ``rules/`` and the full KPI
catalog; ``parity``: the peer's job, see ``benchmarks/modes.py``), and samples it with
``py-spy record`` from the moment it is ready until it has handled every event (or
``--budget`` seconds). Writes to ``--out-dir`` (``benchmarks/results/``, git-ignored):

* ``profile-<stamp>.speedscope.json``: open it at https://www.speedscope.app;
* ``profile-<stamp>.txt``: the summary (``benchmarks/profile_summary.py``): own and total
  time per module (``streams.judge.batch``, ``streams.kpis.store``, ``faust``, ``aiokafka``…)
  and per function, for the worker's event loop thread.

py-spy needs ptrace rights over the worker (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams` and `benchmarks` importable
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from benchmarks import profile_summary  # noqa: E402
from benchmarks.events import generate  # noqa: E402
from benchmarks.kafka_io import kafka_for, produce_fast  # noqa: E402
from benchmarks.modes import MODES, prepare  # noqa: E402
from benchmarks.run import create_topics, worker_env  # noqa: E402
from benchmarks.worker import Worker, handled, watch  # noqa: E402


def log(message: str) -> None:
    print(f"[profile {time.strftime('%H:%M:%S')}] {message}", flush=True)


def py_spy() -> str:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")
    return str(spy)


class Recording:
    """``py-spy record`` of process ``pid`` into the speedscope file ``flame``, from now
    until :meth:`stop` (or ``duration_s``)."""

    def __init__(
        self, pid: int, flame: Path, rate: int = 100, blocking: bool = False,
        duration_s: float | None = None,
    ) -> None:  # fmt: skip
        self.flame = flame
        self.err = b""
        self.proc = subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--rate", str(rate),
             "--format", "speedscope", "--output", str(flame),
             *([] if duration_s is None else ["--duration", str(int(duration_s))]),
             *([] if blocking else ["--nonblocking"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            _, self.err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.err = self.proc.communicate()

    def profiles(self) -> list[profile_summary.Profile]:
        """The recorded profiles (one per thread); exits when py-spy wrote none."""
        if not self.flame.exists():
            tail = self.err.decode(errors="replace")[-2000:]
            raise SystemExit(f"py-spy wrote no profile:\n{tail}")
        return profile_summary.read_speedscope(orjson.loads(self.flame.read_bytes()))


def profile(args: argparse.Namespace, bootstrap: str, work: Path) -> tuple[Path, Path]:
    mode = prepare(REPO / "rules", work)[args.mode]
    workload = generate(args.events, deals=args.deals, owners=args.owners, seed=args.seed)
    prefix = f"prof{uuid.uuid4().hex[:6]}"
    settings = asyncio.run(create_topics(bootstrap, prefix, 4))
    asyncio.run(produce_fast(bootstrap, settings.events_topic, workload))
    log(f"produced {len(workload)} events; worker: {args.mode} ({len(mode.rules)} rules)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    flame = args.out_dir / f"profile-{stamp}.speedscope.json"
    text = args.out_dir / f"profile-{stamp}.txt"
    worker = Worker(
        bootstrap,
        prefix,
        f"prof-{uuid.uuid4().hex[:8]}",
        mode.rules_dir,
        work,
        extra_env={**mode.env, **worker_env(args.worker_env)},
    )
    worker.start()
    assert worker.proc is not None
    spy = Recording(worker.proc.pid, flame, args.rate, args.blocking, args.budget)
    started = time.monotonic()
    try:
        progress = watch(worker, len(workload), args.budget)
    finally:
        spy.stop()
        worker.stop()
    seconds = time.monotonic() - started
    profiles = spy.profiles()
    done = handled(progress.metrics)
    head = (
        f"CRM Pulse worker ({args.mode}: {len(mode.rules)} rules, KPIs {mode.kpis}), "
        f"{done} of {len(workload)} events in {seconds:.0f} s ({progress.rate:,.0f} ev/s "
        f"while profiled), py-spy {args.rate} Hz {'blocking' if args.blocking else 'nonblocking'}"
    )
    text.write_text(head + "\n" + profile_summary.summarise(profiles, args.top) + "\n")
    return flame, text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=MODES, default="full")
    p.add_argument("--events", type=int, default=100_000, help="events (100000)")
    p.add_argument("--deals", type=int, default=100_000)
    p.add_argument("--owners", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--rate", type=int, default=100, help="samples per second (100)")
    p.add_argument("--blocking", action="store_true", help="pause the worker for each sample")
    p.add_argument("--budget", type=float, default=300.0, help="seconds at most (300)")
    p.add_argument("--top", type=int, default=25, help="lines per table (25)")
    p.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--bootstrap", help="use this running broker instead of a local one")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # leadership of fresh topics settles while we produce; aiokafka retries and says so
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    py_spy()
    with tempfile.TemporaryDirectory(prefix="crm-pulse-profile-") as tmp:
        work = Path(tmp)
        with kafka_for(args.bootstrap, work) as bootstrap:
            flame, text = profile(args, bootstrap, work)
    print(text.read_text())
    print(f"profile: {flame}\nsummary: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
