"""Alerting beyond the judge: silences, the notification gate and budget, the board, source
alerts (the timers and KPI rules are judged by :mod:`streams.judge`)."""
