"""redaction-proxy: enforce data-visibility rules in front of a legacy backend that cannot."""
