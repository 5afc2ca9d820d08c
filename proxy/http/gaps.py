"""The sentinel on policed answers (issue 10, item 3): the thin shell around sentinel.GapScan.

gap_scan decides whether a request's records are scanned at all (a contacts-restricted caller, the
sentinel on, a plan with places no step reads); report_findings counts what either sentinel found
(here, and the relay's) and logs each (route, path) pair once, through one ledger.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..decide import Plan
from ..facts.viewer import Viewer
from ..sentinel import Finding, GapScan, SentinelMode
from .state import Outcome, Services


def gap_scan(services: Services, plan: Plan, viewer: Viewer) -> GapScan | None:
    """A scan for this request, or None (nothing to scan: zero per-record cost)."""
    visible = viewer.visible_contacts
    if not plan.unread or visible is None or services.config.sentinel is SentinelMode.OFF:
        return None
    redact = services.config.sentinel is SentinelMode.REDACT and services.effects.apply
    return GapScan(lambda contact_id: contact_id not in visible, redact)


def report_gaps(services: Services, gaps: GapScan | None, route: str, outcome: Outcome) -> None:
    """The findings of a policed answer's scan, counted and logged (report_findings)."""
    if gaps is None or not gaps.found:
        return
    report_findings(services, route, gaps.found, gaps.redact, outcome)
    gaps.found.clear()


def report_findings(services: Services, route: str, findings: Iterable[Finding], redact: bool,
                    outcome: Outcome) -> None:
    """Count each finding under (route template, path template); log the first of each pair: what
    and where, never the value, a name or an id (the route and path are templates)."""
    for finding in findings:
        (route_label, path_label), first = services.ledger.label(route, finding.path)
        services.metrics.policy_gap.labels(route_label, path_label).inc()
        if first:
            services.log.warning("policy_gap", request_id=outcome.request_id, route=route_label,
                                 path=path_label, mode=services.config.mode.value,
                                 outcome="redacted" if redact else "reported")
