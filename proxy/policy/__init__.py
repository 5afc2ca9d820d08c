"""Policies: load and validate YAML, compile to a plain PolicySet value, match canonical requests."""
