"""The judge: one pure per-record logic for changes, due timers and KPI points, over a typed entity state."""
