"""Configuration shared by every test: property-based tests run without a per-example
deadline. The suite runs on shared 2-core machines; a deadline there measures the machine's
load, not the code (the properties assert results, never speed)."""

from hypothesis import settings

settings.register_profile("crm-pulse", deadline=None)
settings.load_profile("crm-pulse")
