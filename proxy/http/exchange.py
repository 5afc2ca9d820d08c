"""One policed exchange: everything the responders need about the request, the caller and the plan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from ..decide import Decision, Plan
from ..facts.viewer import Viewer
from ..policy.model import Route
from .state import Loaded, Outcome, Services


@dataclass(slots=True)
class Exchange:
    request: web.Request
    services: Services
    loaded: Loaded
    route: Route
    method: str
    viewer: Viewer
    plan: Plan
    authorization: str
    client_fields: str | None       # the client's own `fields` text, for paging links
    count_target: str | None        # the contacts index to count honestly, when the plan filters
    public: URL
    outcome: Outcome
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)

    def note(self, decisions: list[Decision]) -> None:
        """Count and, in dry-run (or at debug), log each decision: rule, route, path, id, action."""
        if not decisions:
            return
        mode = self.services.config.mode.value
        dry = not self.services.enforce
        for d in decisions:
            self.tally[(d.rule.value, d.action.value)] += 1
            if dry:
                self.services.log.info("decision", request_id=self.outcome.request_id, mode=mode,
                                       rule=d.rule.value, action=d.action.value, route=self.route.template,
                                       path=d.path, object_id=d.object_id)
            else:
                self.services.log.debug("decision", request_id=self.outcome.request_id, mode=mode,
                                        rule=d.rule.value, action=d.action.value, route=self.route.template,
                                        path=d.path, object_id=d.object_id)
        self.outcome.decisions += len(decisions)

    def flush_tally(self) -> None:
        mode = self.services.config.mode.value
        for (rule, action), n in self.tally.items():
            self.services.metrics.decisions.labels(rule, action, mode).inc(n)
        self.tally.clear()
