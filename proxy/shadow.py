"""Shadowing a candidate policy set: where its decisions differ from the live set's. Pure.

The candidate decides on the same requests and records as the live set and is never applied; these
functions only compare. Differences are named by a closed set of kinds, so metric labels stay bounded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from .check import Violation
from .decide import Decision
from .policy.fields import DEFAULT_NESTED, Selection
from .policy.model import PolicySet

NO_RULE = "-"
"""The rule label of a difference no one rule made (a route one set polices and the other relays)."""
UNMATCHED = "unmatched"
"""The route label when neither set has a template for the path (one relays it, the other answers 404)."""


class Kind(StrEnum):
    WOULD_REDACT_ONLY_SHADOW = "would_redact_only_shadow"
    WOULD_REDACT_ONLY_LIVE = "would_redact_only_live"
    WOULD_DROP_ONLY_SHADOW = "would_drop_only_shadow"
    WOULD_DROP_ONLY_LIVE = "would_drop_only_live"
    REFUSE_ONLY_SHADOW = "refuse_only_shadow"
    REFUSE_ONLY_LIVE = "refuse_only_live"
    ROUTE_ONLY_SHADOW = "route_only_shadow"        # the candidate polices what the live set relays
    ROUTE_ONLY_LIVE = "route_only_live"            # the live set polices what the candidate relays
    UNROUTABLE_ONLY_SHADOW = "unroutable_only_shadow"  # the candidate would answer 404/405, the live set serves
    UNROUTABLE_ONLY_LIVE = "unroutable_only_live"
    ROUTE_DIFFERS = "route_differs"                # both police it, under different templates
    UNDECIDABLE = "undecidable"                    # the candidate could not decide (fields, facts, shape)


def _decision_kind(filters: bool, *, only_shadow: bool) -> Kind:
    if filters:  # the action drops records (filter_contacts) rather than redacting them
        return Kind.WOULD_DROP_ONLY_SHADOW if only_shadow else Kind.WOULD_DROP_ONLY_LIVE
    return Kind.WOULD_REDACT_ONLY_SHADOW if only_shadow else Kind.WOULD_REDACT_ONLY_LIVE


Difference = tuple[str, Kind, str]
"""(rule, kind, JSON path or "" for a request): what one difference is, never a value."""


def compare_decisions(live: Iterable[Decision], shadow: Iterable[Decision]) -> list[Difference]:
    """The decisions on one record that only one side took, compared by (JSON path, rule, action)."""
    mine = Counter((d.path, d.rule.value, d.action, d.step.binding.definition.filters) for d in live)
    theirs = Counter((d.path, d.rule.value, d.action, d.step.binding.definition.filters) for d in shadow)
    if mine == theirs:
        return []
    out: list[Difference] = []
    for (path, rule, _, filters), n in (theirs - mine).items():
        out.extend([(rule, _decision_kind(filters, only_shadow=True), path)] * n)
    for (path, rule, _, filters), n in (mine - theirs).items():
        out.extend([(rule, _decision_kind(filters, only_shadow=False), path)] * n)
    return out


def compare_violations(live: Iterable[Violation], shadow: Iterable[Violation]) -> list[Difference]:
    """The request checks only one side failed, compared by (rule, action, status)."""
    def key(v: Violation) -> tuple[str, str, int]:
        return v.binding.rule.value, v.binding.action.value, v.error.status

    mine, theirs = Counter(map(key, live)), Counter(map(key, shadow))
    out: list[Difference] = []
    for (rule, _, _), n in (theirs - mine).items():
        out.extend([(rule, Kind.REFUSE_ONLY_SHADOW, "")] * n)
    for (rule, _, _), n in (mine - theirs).items():
        out.extend([(rule, Kind.REFUSE_ONLY_LIVE, "")] * n)
    return out


def _routing(policies: PolicySet, segments: tuple[str, ...], method: str) -> tuple[str, str | None]:
    """How one set treats the request: ("relay", None), ("unroutable", template or None) or ("route", template)."""
    if not policies.policed(segments):
        return "relay", None
    match = policies.match(segments)
    if match is None:
        return "unroutable", None
    if method not in match.route.methods:
        return "unroutable", match.route.template
    return "route", match.route.template


def route_difference(
    live: PolicySet, shadow: PolicySet, segments: tuple[str, ...], method: str
) -> tuple[str, Kind] | None:
    """(route label, kind) when the two sets route the request differently; None when they agree
    (both relay it, both refuse it, or both police it under one template)."""
    method = "GET" if method == "HEAD" else method
    (mine, mine_t), (theirs, theirs_t) = _routing(live, segments, method), _routing(shadow, segments, method)
    if mine == theirs and mine_t == theirs_t:
        return None
    if mine == theirs == "unroutable":
        return None  # both refuse it (404 or 405): no answer of either reaches a rule
    label = mine_t or theirs_t or UNMATCHED
    if mine == "route" and theirs == "route":
        return label, Kind.ROUTE_DIFFERS
    if theirs == "unroutable":
        return label, Kind.UNROUTABLE_ONLY_SHADOW
    if mine == "unroutable":
        return label, Kind.UNROUTABLE_ONLY_LIVE
    return label, Kind.ROUTE_ONLY_SHADOW if mine == "relay" else Kind.ROUTE_ONLY_LIVE


def covers(asked: Selection, needed: Selection) -> bool:
    """Whether an answer to `asked` holds everything `needed` selects: the candidate decides only on
    what the live set asked the backend for, and never adds a field to the live request."""
    have = {f.name: f.sub for f in asked}
    for f in needed:
        if f.name not in have:
            return False
        sub = have[f.name]
        got = DEFAULT_NESTED if sub is None else frozenset(sub)
        want = DEFAULT_NESTED if f.sub is None else frozenset(f.sub)
        if not want <= got:
            return False
    return True


PATHS_KEPT = 5
"""JSON paths kept per (route, rule, kind) for a request's shadow log line; the rest only counted."""


class ShadowTally:
    """One request's differences, per (route, rule, kind): counts and the first JSON paths."""

    __slots__ = ("counts", "paths")

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, Kind]] = Counter()
        self.paths: dict[tuple[str, str, Kind], list[str]] = {}

    def add(self, route: str, differences: Iterable[Difference]) -> None:
        for rule, kind, path in differences:
            key = (route, rule, kind)
            self.counts[key] += 1
            if path:
                kept = self.paths.setdefault(key, [])
                if len(kept) < PATHS_KEPT:
                    kept.append(path)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def entries(self) -> list[dict[str, object]]:
        """As a log line holds them: route, rule, kind, records, paths (never a value)."""
        return [{"route": route, "rule": rule, "kind": kind.value, "records": n,
                 "paths": self.paths.get((route, rule, kind), [])}
                for (route, rule, kind), n in sorted(self.counts.items())]
