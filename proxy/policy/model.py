"""The compiled policy set: frozen values built once at start-up, matched per request.

A PolicySet is a plain value (no globals): a candidate set can be compiled beside the live one and
both asked to decide on the same traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Rule(StrEnum):
    CONTACTS_VISIBILITY = "contacts_visibility"
    ACTIVITY_HOURS_VISIBILITY = "activity_hours_visibility"
    BILLING_RATE_VISIBILITY = "billing_rate_visibility"
    PERSONAL_INJURY = "personal_injury"


class Action(StrEnum):
    # on responses
    REDACT_CONTACT = "redact_contact"
    FILTER_CONTACTS = "filter_contacts"
    REDACT_HOURS = "redact_hours"
    REDACT_RATE = "redact_rate"
    # on requests, before anything reaches the backend
    HIDE_CONTACT = "hide_contact"
    REFUSE_CONTACT_REFERENCE = "refuse_contact_reference"
    REFUSE_CONTACT_VALUE = "refuse_contact_value"
    REFUSE_HOURS_EDIT = "refuse_hours_edit"
    REQUIRE_PERMISSION = "require_permission"


RESPOND_ACTIONS: dict[Action, Rule] = {
    Action.REDACT_CONTACT: Rule.CONTACTS_VISIBILITY,
    Action.FILTER_CONTACTS: Rule.CONTACTS_VISIBILITY,
    Action.REDACT_HOURS: Rule.ACTIVITY_HOURS_VISIBILITY,
    Action.REDACT_RATE: Rule.BILLING_RATE_VISIBILITY,
}
CHECK_ACTIONS: dict[Action, Rule] = {
    Action.HIDE_CONTACT: Rule.CONTACTS_VISIBILITY,
    Action.REFUSE_CONTACT_REFERENCE: Rule.CONTACTS_VISIBILITY,
    Action.REFUSE_CONTACT_VALUE: Rule.CONTACTS_VISIBILITY,
    Action.REFUSE_HOURS_EDIT: Rule.ACTIVITY_HOURS_VISIBILITY,
    Action.REQUIRE_PERMISSION: Rule.PERSONAL_INJURY,
}


class Shape(StrEnum):
    INDEX = "index"  # {"data": [...], "meta": {...}}: streamed element by element
    SHOW = "show"    # {"data": {...}}: buffered (bounded)
    RELAY = "relay"  # no rule reads the body (downloads, previews): relayed as is


@dataclass(frozen=True, slots=True)
class Location:
    """Where objects live inside one record: `.`, `vendor`, `attendees[]`, `custom_field_values[].contact`."""

    steps: tuple[tuple[str, bool], ...]  # (key, is_list); empty = the record itself
    text: str

    @property
    def top(self) -> str | None:
        return self.steps[0][0] if self.steps else None

    def find(self, record: dict[str, Any]) -> list[tuple[str, Any, str | int, Any]]:
        """(json path suffix, container, key, object) for each object at this location.

        Direct lookups only, never a walk of the document. Missing keys and nulls give nothing; a
        value of the wrong kind anywhere along the way (an object where a list belongs, a list or a
        string where an object belongs, a list of lists) is a TypeError, never skipped: what is
        inside it would otherwise pass undecided.
        """
        frontier: list[tuple[str, Any, str | int, Any]] = [("", None, "", record)]
        for key, is_list in self.steps:
            nxt: list[tuple[str, Any, str | int, Any]] = []
            for path, _, _, obj in frontier:
                if not isinstance(obj, dict):
                    raise TypeError(f"{path} is not an object")
                value = obj.get(key)
                if value is None:
                    continue
                if is_list:
                    if not isinstance(value, list):
                        raise TypeError(f"{path}.{key} is not a list")
                    nxt.extend((f"{path}.{key}[{i}]", value, i, item) for i, item in enumerate(value)
                               if item is not None)
                else:
                    nxt.append((f"{path}.{key}", obj, key, value))
            frontier = nxt
        return frontier


@dataclass(frozen=True, slots=True)
class Binding:
    """A rule and action bound to a place: a location in records (respond) or in the request (check)."""

    rule: Rule
    action: Action
    seed: str
    source: str                       # file:line, for descriptions and errors
    at: Location | None = None
    participants: bool = False        # a typed list: entries typed as non-contacts are left alone
    methods: frozenset[str] = frozenset()
    status: int = 0
    param: str | None = None
    fields: tuple[str, ...] = ()
    permission: str | None = None
    non_contacts: frozenset[str] = frozenset()
    """With `participants`: the exact type spellings that are not contacts here (`User`; `Calendar`
    for attendees). Every other type, however close, is a contact."""


@dataclass(frozen=True, slots=True)
class Route:
    family: str
    template: str                     # "/contacts/{id}", relative to the base path
    segments: tuple[str | None, ...]  # literal segment, or None for an id parameter
    params: tuple[str, ...]           # names of the id parameters, in order
    shape: Shape
    methods: frozenset[str]
    respond: tuple[Binding, ...]
    checks: tuple[Binding, ...]
    refreshes_facts: bool
    source: str


@dataclass(frozen=True, slots=True)
class Waiver:
    """A place no rule needs to read, with the reason written beside it: `family` alone waives a family."""

    reason: str
    source: str                               # file:line:col
    family: str | None = None
    segments: tuple[str | None, ...] = ()     # the route, parameters as None
    template: str = ""
    at: str = "."
    methods: frozenset[str] = frozenset()     # empty: every method


@dataclass(frozen=True, slots=True)
class FactsQuery:
    path: str                                  # relative to the base path
    query: tuple[tuple[str, str], ...]         # may hold "{caller_id}"


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, int]


@dataclass(frozen=True, slots=True)
class PolicySet:
    base: tuple[str, ...]                      # ("api", "v4")
    routes: tuple[Route, ...]
    facts: dict[str, FactsQuery]
    version: str                               # digest of the files it was compiled from
    files: tuple[str, ...] = field(default=())
    waivers: tuple[Waiver, ...] = field(default=())

    @property
    def families(self) -> frozenset[str]:
        return frozenset(r.family for r in self.routes)

    def relative(self, segments: tuple[str, ...]) -> tuple[str, ...] | None:
        """The segments below the base path, or None when the path is outside it."""
        n = len(self.base)
        if segments[:n] != self.base or len(segments) == n:
            return None
        return segments[n:]

    def policed(self, segments: tuple[str, ...]) -> bool:
        rel = self.relative(segments)
        return rel is not None and rel[0] in self.families

    def match(self, segments: tuple[str, ...]) -> Match | None:
        rel = self.relative(segments)
        if rel is None:
            return None
        for route in self.routes:
            if len(route.segments) != len(rel):
                continue
            ids: list[int] = []
            for want, got in zip(route.segments, rel, strict=True):
                if want is None:
                    if not got.isascii() or not got.isdigit() or len(got) > 19:
                        break
                    ids.append(int(got))
                elif want != got:
                    break
            else:
                return Match(route, dict(zip(route.params, ids, strict=True)))
        return None
