"""Verbs of the ``crm-pulse`` command line (:mod:`streams.cli`), one module per noun."""
