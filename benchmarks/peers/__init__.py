"""Peer implementations of the benchmark job in other stream-processing libraries."""
