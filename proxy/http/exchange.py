"""One policed exchange: everything the responders need about the request, the caller and the plan."""

from __future__ import annotations

import operator
import random
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from ..body import Judging
from ..decide import Bound, Decision, Plan, Step
from ..etag import Sealer
from ..facts.viewer import Viewer
from ..native import scanner
from ..policy.model import Route
from ..recent import PER_REQUEST
from ..report import PATHS_PER_ENTRY, summarise
from ..sentinel import GapScan
from .shadowing import RecordShadow
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
    paths: dict[Step, list[str]] = field(default_factory=dict)  # the first JSON paths per step, for the summary
    paths_full: bool = False        # every step has its sample of paths: the rest need not be looked at
    log_each: bool = False          # debug, or sampled by --decision-log-sample: a log line per decision
    tap: list[bytes] | None = None  # dry-run: the backend's bytes read before the client got any
    record_id: int | None = None    # a show route about one id (/contacts/{id}): the id asked for
    shadow: RecordShadow | None = None  # the candidate set deciding on the same records (--shadow-policies)
    gaps: GapScan | None = None     # the sentinel's scan of places no step reads (proxy/http/gaps.py)

    def __post_init__(self) -> None:
        config = self.services.config
        # Sampled per request, not per decision: a sampled request's decision lines are all there.
        sample = config.decision_log_sample
        self.log_each = config.log_level == "debug" or (sample > 0 and random.random() < sample)
        if not self.services.effects.fail_closed:
            self.tap = []

    @property
    def plan(self) -> Plan:
        return self.bound.plan

    @property
    def viewer(self) -> Viewer:
        return self.bound.viewer

    def judging(self) -> Judging:
        """What each record of the answer goes through (proxy/body.py): this exchange's plan, mode,
        noting, sealing, and the shadow candidate and sentinel watching beside it."""
        shadow = self.shadow
        apply = self.services.effects.apply
        seal = self.sealer.record_tag
        compiled = None
        if self.services.config.native != "off":
            compiled = scanner(self.bound, apply=apply, watched=shadow is not None or self.gaps is not None, seal=seal)
        return Judging(self.bound, apply, self.note, seal,
                       shadow.observe if shadow is not None else None,
                       shadow.settle if shadow is not None else None, self.gaps, compiled)

    def note(self, decisions: list[Decision]) -> None:
        """Count each decision, keep it for /decisions/{id} (rule, action, path, id: no value) and the
        first paths per step for the request's summary line; log it on its own line only at debug or
        when this request was sampled: one line per hidden object flooded the logs (199 lines for one
        restricted page), and building them cost a fifth of the proxy's CPU."""
        self.outcome.decisions += len(decisions)
        self.tally.update(map(_STEP, decisions))
        trail = self.outcome.trail_of()
        kept = trail.decisions
        room = PER_REQUEST - len(kept)
        if room < len(decisions):
            trail.truncated += len(decisions) - max(room, 0)  # past the cap only counted: a huge page stays cheap
        if room > 0:
            kept.extend([(*d.step.names, d.path, d.object_id) for d in decisions[:room]])
        if self.paths_full:
            self._log_each(decisions)
            return
        paths = self.paths
        for d in decisions:
            seen = paths.get(d.step)
            if seen is None:
                paths[d.step] = [d.path]
            elif len(seen) < PATHS_PER_ENTRY:
                seen.append(d.path)
        # Once every step of the plan has its sample of paths, none is looked at again.
        self.paths_full = len(paths) == len(self.bound.plan.steps) and all(
            len(seen) >= PATHS_PER_ENTRY for seen in paths.values())
        self._log_each(decisions)

    def _log_each(self, decisions: list[Decision]) -> None:
        if not self.log_each:
            return
        config = self.services.config
        log = self.services.log.debug if config.log_level == "debug" else self.services.log.info
        for d in decisions:
            log("decision", request_id=self.outcome.request_id, mode=config.mode.value, rule=d.rule.value,
                action=d.action.value, route=self.route.template, user_id=self.viewer.user_id, path=d.path,
                object_id=d.object_id)

    def flush_tally(self) -> None:
        """Count the request's decisions by route, rule and action, and write its one summary line
        (which the rollout report reads too, live here and offline from the logs)."""
        mode = self.services.config.mode.value
        route = self.route.template
        for step, n in self.tally.items():
            self.services.metrics.decisions.labels(step.binding.rule.value, step.action.value, mode, route).inc(n)
        if self.tally:
            decided = summarise(((s.binding.rule.value, s.action.value, n, self.paths.get(s, []))
                                 for s, n in self.tally.items()), mode)
            event = {"request_id": self.outcome.request_id, "mode": mode, "route": route, "method": self.method,
                     "user_id": self.viewer.user_id, "decided": decided,
                     "policy_version": self.loaded.policies.version}
            self.services.log.info("decisions", **event)
            self.services.report.add({"event": "decisions", **event})
        self.tally.clear()
        self.paths.clear()


_STEP = operator.attrgetter("step")
