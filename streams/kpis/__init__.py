"""KPIs: one catalog of definitions, facts from entity changes, windowed accumulators, trust.

Pure modules (no Faust, no Kafka): :mod:`catalog`, :mod:`windows`, :mod:`directory`,
:mod:`facts`, :mod:`accumulate`, :mod:`compute`, :mod:`store`. The Faust wiring lives in
:mod:`streams.agents.kpis`; the dataset replay in :mod:`streams.kpis.replay`.
"""
