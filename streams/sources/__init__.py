"""CRM sources: pure translators from raw payloads to ChangeEvents.

One module per source type; a payload that cannot be translated becomes a refusal.
"""
