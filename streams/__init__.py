"""CRM Pulse: live CRM changes in, trustworthy sales KPIs and real-time alerts out."""

__version__ = "0.1.0"
