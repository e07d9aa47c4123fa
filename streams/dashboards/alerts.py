"""The "Alerts" dashboard: active, fired, escalated and silenced alerts, notifications."""

from __future__ import annotations

from typing import Any

from streams.dashboards.panels import RATE, Layout, Query, assemble, single, top_table, ts


def alerts_dashboard() -> Any:
    layout = Layout()
    layout.row("Now")
    layout.add(single("Active alerts", "Open alert episodes (all rules).",
                      Query("sum(crm_pulse_active_alerts)"),
                      steps=[(None, "green"), (1, "orange"), (50, "red")]), w=6, h=5)  # fmt: skip
    layout.add(single("Escalated (1h)", "Alerts escalated in the last hour.",
                      Query('sum(increase(crm_pulse_alerts_total{status="ESCALATED"}[1h]))'),
                      steps=[(None, "green"), (1, "red")]), w=6, h=5)  # fmt: skip
    layout.add(
        single(
            "Silenced (1h)",
            "Alerts suppressed by a silence in the last hour.",
            Query('sum(increase(crm_pulse_alerts_muted_total{reason="silenced"}[1h]))'),
        ),
        w=6,
        h=5,
    )
    layout.add(single("Alerts fired (1h)", "New alert episodes in the last hour.",
                      Query('sum(increase(crm_pulse_alerts_total{status="FIRING"}[1h]))')),
               w=6, h=5)  # fmt: skip
    layout.row("Rates")
    layout.add(ts("Alerts/s by rule and severity", "All statuses.",
                  [Query(f"sum by (rule, severity) (rate(crm_pulse_alerts_total[{RATE}]))",
                         "{{rule}} ({{severity}})")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(ts("Alerts/s by status", "FIRING, REMINDER, ESCALATED, RESOLVED.",
                  [Query(f"sum by (status) (rate(crm_pulse_alerts_total[{RATE}]))",
                         "{{status}}")], "ops"), w=12, h=8)  # fmt: skip
    layout.add(
        ts(
            "Active alerts by rule",
            "Open episodes per rule.",
            [Query("sum by (rule) (crm_pulse_active_alerts)", "{{rule}}")],
        ),
        w=8,
        h=8,
    )
    layout.add(ts("Escalated/s by rule", "Escalations per rule.",
                  [Query(f'sum by (rule) (rate(crm_pulse_alerts_total{{status="ESCALATED"}}'
                         f"[{RATE}]))", "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Silenced/s by rule", "Alerts suppressed by silences, per rule.",
                  [Query("sum by (rule) (rate(crm_pulse_alerts_muted_total"
                         f'{{reason="silenced"}}[{RATE}]))',
                         "{{rule}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.row("Who and what")
    layout.add(top_table("Top rules (1h)", "Rules with the most new alerts in the last hour.",
                         Query('topk(10, sum by (rule) (increase(crm_pulse_alerts_total'
                               '{status="FIRING"}[1h])))', table=True)), w=12, h=8)  # fmt: skip
    layout.add(top_table(
        "Top owners (1h, opt-in)",
        "Owners with the most alerts in the last hour. Owner ids are not metric labels by "
        "default (unbounded): set CRM_PULSE_METRICS_OWNER_LABEL=true to fill this panel, only "
        "with a bounded number of owners.",
        Query("topk(10, sum by (owner) (increase(crm_pulse_alerts_by_owner_total[1h])))",
              table=True)), w=12, h=8)  # fmt: skip
    layout.row("Notifications")
    # `or vector(0)`: a worker without the notifier still answers (0, not "No data").
    layout.add(ts("Notifications/s by target and result",
                  "sent, failed (each failed attempt), retried, dead_lettered (crm.notify.dlq).",
                  [Query(f"sum by (target, result) (rate(crm_pulse_notifications_total[{RATE}]))"
                         " or vector(0)", "{{target}} {{result}}")], "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Notifications/s by alert status", "Successful deliveries per status.",
                  [Query("sum by (status) (rate(crm_pulse_notifications_total"
                         f'{{result="sent"}}[{RATE}])) or vector(0)', "{{status}}")],
                  "ops"), w=8, h=8)  # fmt: skip
    layout.add(ts("Latency: fired_at to delivered (p50/p99)",
                  "From the alert's fired_at to the target's 2xx, per target.",
                  [Query("histogram_quantile(0.5, sum by (le, target) (rate("
                         f"crm_pulse_notification_latency_seconds_bucket[{RATE}]))) or vector(0)",
                         "p50 {{target}}"),
                   Query("histogram_quantile(0.99, sum by (le, target) (rate("
                         f"crm_pulse_notification_latency_seconds_bucket[{RATE}]))) or vector(0)",
                         "p99 {{target}}")], "s"), w=8, h=8)  # fmt: skip
    layout.add(single("Dead-lettered notifications (1h)",
                      "Alerts a target refused after the last retry: on crm.notify.dlq.",
                      Query("sum(increase(crm_pulse_notifications_total{result=\"dead_lettered\"}"
                            "[1h])) or vector(0)"),
                      steps=[(None, "green"), (1, "red")]), w=6, h=5)  # fmt: skip
    layout.add(single("Open episodes held in Alertmanager",
                      "Open episodes the notifier re-posts (0 without a notifier).",
                      Query("sum(crm_pulse_notify_open_episodes) or vector(0)")),
               w=6, h=5)  # fmt: skip
    return assemble("crm-pulse-alerts", "Alerts", layout)
