"""HTTP APIs served by the worker's web server (one module per resource)."""
