"""Prometheus metrics, on a registry of the app's own (no module-level state).

Labels come from closed sets only: route templates, rule and action names, statuses, modes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    upstream_seconds: Histogram
    decisions: Counter
    blocked: Counter
    undecidable: Counter
    facts_fetches: Counter
    policy_gap: Counter
    sentinel_scanned: Counter
    sentinel_unscanned: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry,
            Counter("redaction_proxy_requests", "Requests answered", ["route", "method", "status", "mode"],
                    registry=registry),
            Histogram("redaction_proxy_upstream_seconds", "Time to the backend's response headers",
                      ["route"], registry=registry),
            Counter("redaction_proxy_decisions", "Objects a rule decided to change",
                    ["rule", "action", "mode", "route"], registry=registry),
            Counter("redaction_proxy_blocked", "Requests a rule blocked (or would have, in dry-run)",
                    ["rule", "status", "mode", "route"], registry=registry),
            Counter("redaction_proxy_undecidable", "Requests that could not be decided",
                    ["route", "mode"], registry=registry),
            Counter("redaction_proxy_facts_fetches", "Backend requests made to learn facts", ["fact"],
                    registry=registry),
            # Labels are the sentinel's bounded templates (proxy/sentinel.py: Ledger), never raw paths.
            Counter("redaction_proxy_policy_gap", "Contacts hidden from the caller found where no policy "
                    "step reads (the sentinel)", ["route", "path"], registry=registry),
            Counter("redaction_proxy_sentinel_scanned", "Unpoliced JSON answers the sentinel scanned",
                    registry=registry),
            Counter("redaction_proxy_sentinel_unscanned", "Unpoliced JSON answers of a restricted caller the "
                    "sentinel could not scan, by reason", ["reason"], registry=registry),
        )
