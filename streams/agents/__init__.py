"""Faust agents: thin wiring between topics, tables and the pure engine."""
