"""The end of every request, for the rollout tools: the report counts it (undecidable or refused by
the proxy), and a policed one joins the ring that `/decisions/{request_id}` explains."""

from __future__ import annotations

from ..recent import Entry, Trail
from .state import Outcome, Services

_UNPOLICED = frozenset({"passthrough", "invalid"})


def record_request(services: Services, outcome: Outcome, policy_version: str) -> None:
    mode = services.config.mode.value
    # The fields the report reads from a `request` log line, offline; live it is given them directly.
    services.report.add({
        "event": "request", "request_id": outcome.request_id, "route": outcome.route, "mode": mode,
        "user_id": outcome.user_id, "undecidable": outcome.undecidable, "error": outcome.error,
        "blocked": outcome.blocked, "policy_version": policy_version,
    })
    if outcome.route not in _UNPOLICED:
        services.recent.add(outcome.request_id, Entry(
            outcome.route, outcome.method, outcome.user_id, mode, outcome.status, policy_version,
            outcome.trail or Trail()))
