"""The judge: one pure per-record logic over a typed entity state.

It judges changes, due timers and KPI points.
"""
