"""One policed exchange: everything the responders need about the request, the caller and the plan."""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from ..decide import Bound, Decision, Plan, Step
from ..etag import Sealer
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
    bound: Bound                    # the plan, bound to this caller
    authorization: str
    client_fields: str | None       # the client's own `fields` text, for paging links
    count_target: str | None        # the contacts index to count honestly, when the plan filters
    public: URL
    outcome: Outcome
    sealer: Sealer                  # the proxy's ETags for this caller and policy version
    tally: Counter[Step] = field(default_factory=Counter)  # decisions per step (steps hash by identity)
    log_each: bool = False          # dry-run, or debug: a log line per decision
    tap: list[bytes] | None = None  # dry-run: the backend's bytes read before the client got any
    record_id: int | None = None    # a show route about one id (/contacts/{id}): the id asked for

    def __post_init__(self) -> None:
        self.log_each = not self.services.enforce or self.services.config.log_level == "debug"
        if not self.services.enforce:
            self.tap = []

    @property
    def plan(self) -> Plan:
        return self.bound.plan

    @property
    def viewer(self) -> Viewer:
        return self.bound.viewer

    def note(self, decisions: list[Decision]) -> None:
        """Count and, in dry-run (or at debug), log each decision: rule, route, path, id, action."""
        self.outcome.decisions += len(decisions)
        self.tally.update(map(_STEP, decisions))
        # Enforce logs decisions only at debug: building a log event per redacted object cost a
        # fifth of the proxy's CPU on a restricted page even when the level filtered it out.
        if not self.log_each:
            return
        log = self.services.log.info if not self.services.enforce else self.services.log.debug
        mode = self.services.config.mode.value
        for d in decisions:
            log("decision", request_id=self.outcome.request_id, mode=mode, rule=d.rule.value,
                action=d.action.value, route=self.route.template, path=d.path, object_id=d.object_id)

    def flush_tally(self) -> None:
        mode = self.services.config.mode.value
        for step, n in self.tally.items():
            self.services.metrics.decisions.labels(step.binding.rule.value, step.action.value, mode).inc(n)
        self.tally.clear()


_STEP = operator.attrgetter("step")
