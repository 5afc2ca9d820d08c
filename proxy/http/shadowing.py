"""The candidate set (--shadow-policies) beside the live one on one request: its caller's settings,
its checks and its decisions on each record, compared with the live set's and tallied on the request's
Outcome, then counted, logged and reported once per request. Nothing here changes what the client gets:
the candidate decides on the records the live set fetched and never adds a field to the live request;
it fetches only facts, or a record a check of its own reads, that the live set did not need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..check import Violation, check_request
from ..decide import Bound, Decision, Plan, decide
from ..errors import ProxyError, UndecidableError
from ..facts.viewer import Viewer
from ..policy.fields import DEFAULT_SELECTION, parse_fields
from ..policy.model import Route
from ..query_check import check_query
from ..shadow import NO_RULE, Kind, ShadowTally, compare_decisions, compare_violations, covers
from .state import Loaded, Outcome, Services


@dataclass(frozen=True, slots=True)
class Candidate:
    """The candidate set, and its route for this request (the same template as the live set's)."""

    loaded: Loaded
    route: Route


async def candidate_viewer(
    services: Services, authorization: str, live: Loaded, candidate: Loaded, viewer: Viewer
) -> Viewer | None:
    """The caller as the candidate's settings see them; None when its facts cannot be had. Facts are
    per caller and cached: only a visible set the live settings did not need is fetched (with the live
    set's facts queries), through the same cache, so the next request has it too."""
    settings = candidate.settings.for_caller(viewer.user_id, viewer.roles)
    if settings == viewer.settings:
        return viewer
    try:
        return await services.facts.viewer(authorization, live.policies, candidate.settings)
    except ProxyError:
        return None


def compare_checks(
    tally: ShadowTally, template: str, live: list[Violation], candidate: Route, method: str,
    params: dict[str, int], body: Any, query: tuple[tuple[str, str], ...], viewer: Viewer,
    extra: list[Violation],
) -> None:
    """The candidate's request checks beside the live set's; `extra` are its hours-edit violations."""
    try:
        theirs = check_request(candidate, method, params, body, viewer)
        theirs.extend(check_query(candidate, method, query, viewer.settings))
    except ProxyError:
        tally.add(template, [(NO_RULE, Kind.UNDECIDABLE, "")])
        return
    tally.add(template, compare_violations(live, [*theirs, *extra]))


class RecordShadow:
    """Decides the candidate on each record before the live transform changes it (decide is pure),
    then compares with the live set's decisions on that record by (JSON path, rule, action)."""

    __slots__ = ("_bound", "_pending", "_tally", "_template")

    def __init__(self, bound: Bound, tally: ShadowTally, template: str) -> None:
        self._bound: Bound | None = bound
        self._tally = tally
        self._template = template
        self._pending: list[Decision] | None = None

    @staticmethod
    def of(
        live: Plan, candidate: Plan, viewer: Viewer, fields_text: str | None, tally: ShadowTally, template: str
    ) -> RecordShadow | None:
        """None when neither plan decides anything; counted undecidable (and None) when the candidate
        needs a field the live request did not ask for: the live request is never changed for it."""
        if not live.steps and not candidate.steps:
            return None
        client = parse_fields(fields_text) if fields_text is not None else DEFAULT_SELECTION
        if candidate.steps and not covers(live.upstream_selection or client, candidate.upstream_selection or client):
            tally.add(template, [(NO_RULE, Kind.UNDECIDABLE, "")])
            return None
        return RecordShadow(candidate.bind(viewer), tally, template)

    def observe(self, record: Any, path: str) -> None:
        if self._bound is None:
            return
        try:
            if not isinstance(record, dict):
                raise UndecidableError("a record is not an object")
            self._pending = decide(record, path, self._bound)
        except UndecidableError:
            # The candidate cannot read this answer: counted once, and not asked again on this request.
            self._tally.add(self._template, [(NO_RULE, Kind.UNDECIDABLE, path)])
            self._bound = None
            self._pending = None

    def settle(self, live: list[Decision]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        differences = compare_decisions(live, pending)
        if differences:
            self._tally.add(self._template, differences)


def flush_shadow(services: Services, outcome: Outcome, loaded: Loaded, method: str) -> None:
    """Count the request's differences, write its one `shadow` line (JSON paths, never values) and add
    it to the rollout report."""
    tally = outcome.shadow
    candidate = loaded.shadow
    if not tally or candidate is None:
        return
    for (route, rule, kind), n in tally.counts.items():
        services.metrics.shadow_differences.labels(route, rule, kind.value).inc(n)
    event = {
        "request_id": outcome.request_id, "mode": services.config.mode.value, "route": outcome.route,
        "method": method, "user_id": outcome.user_id, "differences": tally.entries(),
        "policy_version": loaded.policies.version, "shadow_policy_version": candidate.policies.version,
        "shadow_settings_version": candidate.settings_version,
    }
    services.log.info("shadow", **event)
    services.report.add({"event": "shadow", **event})
