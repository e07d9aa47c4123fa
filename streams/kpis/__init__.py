"""KPI catalog and KPI computations."""
