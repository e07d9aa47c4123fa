"""One module per rule type, each with a pure ``evaluate``."""
