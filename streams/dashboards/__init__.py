"""Grafana dashboards as code, generated from the KPI catalog and the metrics of the engine.

Built with Grafana's own ``grafana-foundation-sdk`` (typed builders that follow the
dashboard schema of the pinned Grafana release), written to ``grafana/dashboards/*.json``
for Grafana's file provisioning. A KPI added to the catalog gets its panels on the next
``make dashboards``; a unit test fails while the committed JSON differs from a fresh build.

Modules: :mod:`~streams.dashboards.panels` (the panel vocabulary and the layout),
:mod:`~streams.dashboards.kpis`, :mod:`~streams.dashboards.alerts`,
:mod:`~streams.dashboards.health` (one dashboard each), :mod:`~streams.dashboards.build`
(assembly, JSON files). Run: ``python -m streams.dashboards [--out grafana/dashboards]
[--catalog FILE]``.
"""
