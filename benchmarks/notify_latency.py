"""Notification latency and an Alertmanager outage, on a local Kafka + real Alertmanager.

Phase 1: N alerts (one subject each) are published to crm.alerts at --rate per second; the
notifier delivers each to Alertmanager (whose example routes call a local receiver) and, as
the baseline measured in the same run, to a signed webhook on the same receiver. Latency is
receiver arrival - fired_at. Alertmanager's group_wait dominates its path: the run uses
--group-wait/--group-interval (the example alertmanager.yml ships 10s/30s).

Phase 2: Alertmanager is stopped, --outage-alerts alerts are published during --outage-s
seconds, then it is started again on the same port; the run reports how many of them reached
the receiver and how long after the restart. The notifier runs with its default retry
policy (Alertmanager: retried until it is back, backoff capped at 30 s).

    .venv/bin/python benchmarks/notify_latency.py --alerts 200 --rate 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.runtime.broker import LocalKafka
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.integration.conftest import run_sync
from tests.integration.kafka_io import produce
from tests.integration.notify_helpers import (
    ORG_YAML,
    Alertmanager,
    Notifier,
    Received,
    Receiver,
    alert_json,
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def am_arrivals(received: list[Received], prefix: str) -> dict[str, float]:
    """subject_id -> receiver arrival minus startsAt (fired_at), first firing notification."""
    out: dict[str, float] = {}
    for r in received:
        if not r.path.startswith("/team"):
            continue
        for alert in r.json()["alerts"]:
            sid = alert["labels"]["subject_id"]
            if alert["status"] == "firing" and sid.startswith(prefix) and sid not in out:
                out[sid] = r.at - datetime.fromisoformat(alert["startsAt"]).timestamp()
    return out


def hook_arrivals(received: list[Received], prefix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in received:
        if r.path == "/hook":
            body = json.loads(r.body)
            sid = body["subject"]["id"]
            if sid.startswith(prefix) and sid not in out:
                out[sid] = r.at - datetime.fromisoformat(body["fired_at"]).timestamp()
    return out


def summary(name: str, lat: list[float]) -> str:
    ms = [x * 1000 for x in lat]
    return (f"{name:<28} n={len(ms):4d}  p50={pct(ms, 0.5):8.1f} ms  p99={pct(ms, 0.99):8.1f} ms"
            f"  max={max(ms):8.1f} ms  mean={statistics.fmean(ms):8.1f} ms")  # fmt: skip


def publish_paced(bootstrap: str, topic: str, prefix: str, n: int, rate: float) -> None:
    start = time.monotonic()
    for i in range(n):
        owner = "rep-1" if i % 2 == 0 else "rep-2"
        run_sync(produce(bootstrap, topic, [alert_json(f"{prefix}{i}", "FIRING", 1,
                                                       f"{prefix}{i}", owner=owner)]))  # fmt: skip
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--group-wait", default="1s")
    ap.add_argument("--group-interval", default="1s")
    ap.add_argument("--outage-s", type=float, default=60.0)
    ap.add_argument("--outage-alerts", type=int, default=30)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="crm-pulse-notify-bench-"))
    settings = Settings()
    kafka = LocalKafka(cache_dir=settings.cache_dir, version=settings.kafka_version,
                       work_dir=work / "kafka")  # fmt: skip
    kafka.start()
    receiver = Receiver().start()
    am = Alertmanager(work, receiver.url, args.group_wait, args.group_interval).start()
    suffix = uuid.uuid4().hex[:8]
    prefix = f"b{suffix}"
    s = Settings(broker=f"kafka://{kafka.bootstrap}", topic_prefix=prefix, topic_partitions=2)
    run_sync(ensure_topics(s))
    (work / "org.yaml").write_text(ORG_YAML)
    (work / "hooks.yaml").write_text(
        f"webhooks:\n  - {{name: hook, url: '{receiver.url}/hook',"
        " secret: 'bench-secret-0123456789'}\n"
    )
    env = {
        "CRM_PULSE_BROKER": s.broker, "CRM_PULSE_TOPIC_PREFIX": prefix,
        "CRM_PULSE_APP_ID": f"bench-{suffix}", "CRM_PULSE_ALERTMANAGER_URL": am.url,
        "CRM_PULSE_WEBHOOKS_FILE": str(work / "hooks.yaml"),
        "CRM_PULSE_ORG_DIRECTORY_FILE": str(work / "org.yaml"), "CRM_PULSE_LOG_LEVEL": "warning",
    }  # fmt: skip
    notifier = Notifier(env, work / "notifier.log").start()
    try:
        time.sleep(5)  # group join
        print(f"phase 1: {args.alerts} alerts at {args.rate}/s, Alertmanager group_wait="
              f"{args.group_wait} group_interval={args.group_interval}")  # fmt: skip
        publish_paced(kafka.bootstrap, s.alerts_topic, "L-", args.alerts, args.rate)
        got = receiver.wait_for(
            lambda rs: len(am_arrivals(rs, "L-")) >= args.alerts
            and len(hook_arrivals(rs, "L-")) >= args.alerts, timeout=300,
        )  # fmt: skip
        print(summary("baseline: signed webhook", list(hook_arrivals(got, "L-").values())))
        print(summary("Alertmanager -> receiver", list(am_arrivals(got, "L-").values())))

        print(f"phase 2: Alertmanager down for {args.outage_s:.0f} s, "
              f"{args.outage_alerts} alerts published meanwhile")  # fmt: skip
        am.stop()
        down_at = time.monotonic()
        publish_paced(kafka.bootstrap, s.alerts_topic, "O-", args.outage_alerts,
                      args.outage_alerts / max(args.outage_s - 5, 1))  # fmt: skip
        time.sleep(max(0.0, args.outage_s - (time.monotonic() - down_at)))
        am.start()
        back_at = time.time()
        print(f"  Alertmanager back after {time.monotonic() - down_at:.1f} s")
        got = receiver.wait_for(
            lambda rs: len(am_arrivals(rs, "O-")) >= args.outage_alerts, timeout=300
        )
        arrivals = am_arrivals(got, "O-")
        last = max(r.at for r in got if r.path.startswith("/team") and b'"O-' in r.body)
        print(
            f"  {len(arrivals)}/{args.outage_alerts} outage alerts reached the receiver; "
            f"last one {last - back_at:.1f} s after the restart; "
            f"webhook path meanwhile: {len(hook_arrivals(got, 'O-'))}/{args.outage_alerts}"
        )
    finally:
        notifier.stop()
        am.stop()
        receiver.stop()
        kafka.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
