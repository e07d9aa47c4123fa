"""The "Engine health" dashboard: throughput, latency, lag, rules and internals."""

from __future__ import annotations

from typing import Any

from streams.dashboards.panels import RATE, Layout, Query, assemble, single, ts


def _quantiles(metric: str) -> list[Query]:
    return [
        Query(f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[{RATE}])))", f"p{p}")
        for q, p in ((0.5, 50), (0.95, 95), (0.99, 99))
    ]


def engine_dashboard() -> Any:
    layout = Layout()
    layout.row("Throughput")
    layout.add(single("Workers up", "Workers Prometheus scrapes successfully.",
                      Query('sum(up{job="crm-pulse"})'),
                      steps=[(None, "red"), (1, "green")]), w=6, h=5)  # fmt: skip
    layout.add(
        single(
            "Events/s",
            "Valid events processed per second.",
            Query(f"sum(rate(crm_pulse_events_total[{RATE}]))"),
            "ops",
        ),
        w=6,
        h=5,
    )
    layout.add(single("Consumer lag", "Records behind the end of the input topic (all).",
                      Query("sum(crm_pulse_consumer_lag)"),
                      steps=[(None, "green"), (1000, "orange"), (10000, "red")]),
               w=6, h=5)  # fmt: skip
    layout.add(single("Tracked records", "Records held in the entity-state table.",
                      Query("sum(crm_pulse_tracked_records)")), w=6, h=5)  # fmt: skip
    layout.add(ts("Events/s by entity and op", "Valid change events.",
                  [Query(f"sum by (entity, op) (rate(crm_pulse_events_total[{RATE}]))",
                         "{{entity}} {{op}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Events/s by source", "Valid change events per source system.",
                  [Query(f"sum by (source) (rate(crm_pulse_events_total[{RATE}]))",
                         "{{source}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Dead letters/s by reason", "Refused events sent to the DLQ topic.",
                  [Query(f"sum by (reason) (rate(crm_pulse_invalid_events_total[{RATE}]))",
                         "{{reason}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.row("Latency and lag")
    layout.add(
        ts(
            "Latency: ingest to alert produced",
            "Batch received to alert acknowledged.",
            _quantiles("crm_pulse_processing_latency_seconds"),
            "s",
        ),
        w=8,
        h=8,
    )
    layout.add(
        ts(
            "Latency: event time to alert produced",
            "occurred_at to alert produced.",
            _quantiles("crm_pulse_event_to_alert_latency_seconds"),
            "s",
        ),
        w=8,
        h=8,
    )
    layout.add(ts("Consumer lag by partition", "Highwater minus committed offset.",
                  [Query("sum by (partition) (crm_pulse_consumer_lag)", "p{{partition}}")]),
               w=8, h=8)  # fmt: skip
    layout.row("Rules")
    layout.add(ts("Rule reloads by result", "Rule set swaps since start (ok / error).",
                  [Query("sum by (result) (crm_pulse_rule_reloads_total)", "{{result}}")]),
               w=8, h=8)  # fmt: skip
    layout.add(ts("Rule errors/s by rule", "Rule evaluations that raised (isolated).",
                  [Query(f"sum by (rule) (rate(crm_pulse_rule_errors_total[{RATE}]))",
                         "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Live rules", "Enabled rules in the live set.",
                  [Query("max(crm_pulse_rules_live)", "rules")]), w=8, h=8)  # fmt: skip
    layout.row("Internals")
    layout.add(ts("Batch size p50/p95", "Events per processed batch.",
                  [Query(f"histogram_quantile({q}, sum by (le) "
                         f"(rate(crm_pulse_batch_size_bucket[{RATE}])))", f"p{p}")
                   for q, p in ((0.5, 50), (0.95, 95))]), w=8, h=8)  # fmt: skip
    layout.add(ts("Duplicates/s", "Events ignored as already seen (same event_id).",
                  [Query(f"sum(rate(crm_pulse_duplicate_events_total[{RATE}]))", "duplicates")],
                  "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Housekeeping pass p95", "Lag, active-alert and KPI gauge refresh.",
                  [Query("histogram_quantile(0.95, sum by (le) "
                         f"(rate(crm_pulse_housekeeping_seconds_bucket[{RATE}])))", "p95")],
                  "s"), w=8, h=8)  # fmt: skip
    layout.add(ts("Records produced/s by kind",
                  "Alerts, dead letters and state changelog records sent by the shipper.",
                  [Query(f"sum by (kind) (rate(crm_pulse_produced_total[{RATE}]))",
                         "{{kind}}")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(ts("Shipping p95 (send to broker ack)",
                  "Time from handing a batch's alerts to the producer to the broker's acks.",
                  [Query("histogram_quantile(0.95, sum by (le) "
                         f"(rate(crm_pulse_ship_seconds_bucket[{RATE}])))", "p95")],
                  "s"), w=12, h=8)  # fmt: skip
    return assemble("crm-pulse-engine", "Engine health", layout)
