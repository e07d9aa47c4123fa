"""Alerting beyond the record hot path: timers, KPI rules, silences, budgets, the board."""
