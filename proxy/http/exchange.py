"""One policed exchange: everything the responders need about the request, the caller and the plan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from ..decide import Bound, Decision, Plan
from ..facts.viewer import Viewer
from ..policy.model import Action, Route, Rule
from .state import Loaded, Outcome, Services


@dataclass(slots=True)
class Exchange:
    request: web.Request
    services: Services
    loaded: Loaded
    route: Route
    method: str
    bound: Bound                    # the plan, bound to this caller
    authorization: str
    client_fields: str | None       # the client's own `fields` text, for paging links
    count_target: str | None        # the contacts index to count honestly, when the plan filters
    public: URL
    outcome: Outcome
    tally: Counter[tuple[Rule, Action]] = field(default_factory=Counter)

    @property
    def plan(self) -> Plan:
        return self.bound.plan

    @property
    def viewer(self) -> Viewer:
        return self.bound.viewer

    def note(self, decisions: list[Decision]) -> None:
        """Count and, in dry-run (or at debug), log each decision: rule, route, path, id, action."""
        if not decisions:
            return
        self.outcome.decisions += len(decisions)
        tally = self.tally
        for d in decisions:
            tally[(d.rule, d.action)] += 1
        # Enforce logs decisions only at debug: building a log event per redacted object cost a
        # fifth of the proxy's CPU on a restricted page even when the level filtered it out.
        if self.services.enforce and self.services.config.log_level != "debug":
            return
        log = self.services.log.info if not self.services.enforce else self.services.log.debug
        mode = self.services.config.mode.value
        for d in decisions:
            log("decision", request_id=self.outcome.request_id, mode=mode, rule=d.rule.value,
                action=d.action.value, route=self.route.template, path=d.path, object_id=d.object_id)

    def flush_tally(self) -> None:
        mode = self.services.config.mode.value
        for (rule, action), n in self.tally.items():
            self.services.metrics.decisions.labels(rule.value, action.value, mode).inc(n)
        self.tally.clear()
