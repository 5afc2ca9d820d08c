"""The compiled policy set: frozen values built once at start-up, matched per request.

A PolicySet is a plain value (no globals): a candidate set can be compiled beside the live one and
both asked to decide on the same traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ..rules.base import ActionDef

S = TypeVar("S")


class Name(str):
    """A rule's or an action's name. The rules are open (each rule module names its own, the registry
    collects them), so a name is a string; `.value` reads it as an enum member's would."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str.__str__(self)


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
class Binding(Generic[S]):
    """A rule and action bound to a place: a location in records (respond) or in the request (check),
    with what the policy line says for its action (`spec`, typed by the action) and the action's
    definition from the registry (what decides, checks and covers with it)."""

    rule: Name
    action: Name
    seed: str
    source: str                       # file:line, for descriptions and errors
    at: Location | None
    methods: frozenset[str]
    spec: S
    definition: ActionDef[S] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Route:
    family: str
    template: str                     # "/contacts/{id}", relative to the base path
    segments: tuple[str | None, ...]  # literal segment, or None for an id parameter
    params: tuple[str, ...]           # names of the id parameters, in order
    shape: Shape
    methods: frozenset[str]
    respond: tuple[Binding[Any], ...]
    checks: tuple[Binding[Any], ...]
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
