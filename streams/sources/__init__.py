"""CRM sources: pure translators from a CRM's raw payload to ChangeEvents (or a refusal), one module per source type."""
