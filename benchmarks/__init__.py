"""Throughput and latency benchmark of CRM Pulse, side by side with a limit and a peer."""
