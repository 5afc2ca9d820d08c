"""Coverage: every place a spec says a Contact, a TimeEntry activity or a rated activity comes back,
and the policy step that covers it (or `NOT COVERED`). Also the load-time checks that keep a policy
mistake from silently uncovering one: locations naming no field, families dropped from the bundled set.

Depth: `at:` names at most two levels (`name[].name`). The API returns only default attributes
(`id`, `etag`) of a resource nested deeper, and `fields` cannot name one, so such places are listed as
`nested-defaults` and not counted as gaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .model import Binding, PolicySet, Route
from .spec import Kind, SpecIndex, template_key

MAX_DEPTH = 2


class Status(StrEnum):
    COVERED = "covered"
    REFUSED = "refused"
    WAIVED = "waived"
    NESTED_DEFAULTS = "nested-defaults"
    NOT_COVERED = "NOT COVERED"


@dataclass(frozen=True, slots=True)
class Place:
    method: str
    template: str
    at: str          # `.`, `name`, `name[]`, `name[].name` (deeper: dotted on)
    kind: Kind
    depth: int


@dataclass(frozen=True, slots=True)
class Finding:
    place: Place
    status: Status
    detail: str

    def line(self) -> str:
        where = f"{self.place.method} {self.place.template} at {self.place.at} [{self.place.kind}]"
        if self.status is Status.NOT_COVERED:
            return f"{where}: NOT COVERED"
        return f"{where}: {self.status}: {self.detail}"


def places(spec: SpecIndex) -> list[Place]:
    """Every response location of the spec holding a contact or an activity, in a stable order."""
    out: dict[tuple[str, str, str, Kind], Place] = {}
    for op in spec.operations:
        for at, schema_name, depth in _walk(spec, op.record, (), 0, frozenset()):
            for kind in spec.schemas[schema_name].kinds:
                out.setdefault((op.method, op.template, at, kind), Place(op.method, op.template, at, kind, depth))
    return [out[k] for k in sorted(out)]


def _walk(spec: SpecIndex, name: str, steps: tuple[str, ...], depth: int,
          seen: frozenset[str]) -> Iterator[tuple[str, str, int]]:
    yield (".".join(steps) or "."), name, depth
    if depth > MAX_DEPTH or name in seen:
        return
    for field, (target, is_list) in spec.schemas[name].fields.items():
        if target is not None:
            yield from _walk(spec, target, (*steps, field + ("[]" if is_list else "")), depth + 1, seen | {name})


def cover(policies: PolicySet, spec: SpecIndex) -> list[Finding]:
    return [_cover_one(policies, p) for p in places(spec)]


def _cover_one(policies: PolicySet, place: Place) -> Finding:
    key = template_key(place.template)
    for waiver in policies.waivers:
        if waiver.family is None and waiver.segments == key and waiver.at == place.at and (
                not waiver.methods or place.method in waiver.methods):
            return Finding(place, Status.WAIVED, f"{waiver.source} {waiver.reason}")
    route = _route(policies, key)
    if route is not None:
        if place.method not in route.methods:
            return Finding(place, Status.REFUSED,
                           f"{route.source} {place.method} not allowed on {route.template} (405)")
        for binding in (*route.respond, *route.checks):
            if _covers(binding, place):
                return Finding(place, Status.COVERED,
                               f"{binding.source} {binding.rule} {binding.action} ({binding.seed})")
    elif key[0] in policies.families:
        family_route = next(r for r in policies.routes if r.family == key[0])
        return Finding(place, Status.REFUSED, f"{family_route.source} family {key[0]} has no route "
                                              f"{place.template}: refused (404)")
    for waiver in policies.waivers:
        if waiver.family == key[0]:
            return Finding(place, Status.WAIVED, f"{waiver.source} {waiver.reason}")
    if place.depth > MAX_DEPTH:
        return Finding(place, Status.NESTED_DEFAULTS, "the API returns only id and etag this deep; "
                                                       "`fields` cannot name it")
    return Finding(place, Status.NOT_COVERED, "")


def _route(policies: PolicySet, key: tuple[str | None, ...]) -> Route | None:
    return next((r for r in policies.routes if r.segments == key), None)


def _covers(binding: Binding[Any], place: Place) -> bool:
    """Whether the binding covers the place: its action covers the place's kind (`ActionDef.covers`)."""
    definition = binding.definition
    if place.kind.value not in definition.covers or place.method not in binding.methods:
        return False
    if definition.covers_by_id:
        # A record shown by id (`/contacts/{id}`): the whole answer is refused when it is hidden.
        return place.at == "." and place.template.count("{") == 1
    at = binding.at.text if binding.at is not None else "."
    return at == place.at


def gaps(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is Status.NOT_COVERED]


def location_problems(policies: PolicySet, specs: list[SpecIndex]) -> list[str]:
    """Each `at:` that names no field the specs have at its route (routes the specs lack are not judged)."""
    problems: list[str] = []
    for route in policies.routes:
        records = [(spec, schema) for spec in specs for _, schema in spec.fields_at(route.segments)]
        if not records:
            continue
        for binding in (*route.respond, *route.checks):
            if binding.at is None:
                continue
            if not any(_has(spec, schema, binding.at.steps) for spec, schema in records):
                problems.append(f"{binding.source}: at: `{binding.at.text}` names no field the API has at "
                                f"{route.template} (per {', '.join(sorted({s.source for s, _ in records}))})")
    return problems


def _has(spec: SpecIndex, schema: str | None, steps: tuple[tuple[str, bool], ...]) -> bool:
    for depth, (key, is_list) in enumerate(steps, 1):
        if schema is None:
            return False
        fields = spec.schemas[schema].fields
        if key not in fields:
            # A write's reference may be spelled `contact_id` (split_invoice_payers[].contact_id): the
            # reference checker reads `name: {id}` and `name_id` alike, so either spelling names it.
            return depth == len(steps) and not is_list and f"{key}_id" in fields
        schema, listed = spec.schemas[schema].fields[key]
        if listed != is_list:
            return False
    return True


def dropped_families(policies: PolicySet, bundled: PolicySet, directory: Path) -> list[str]:
    """A family the bundled set polices that this set neither polices nor waives, with a reason."""
    waived = {w.family for w in policies.waivers if w.family is not None}
    problems = []
    for family in sorted(bundled.families - policies.families - waived):
        first = next(r for r in bundled.routes if r.family == family)
        problems.append(f"{directory / (family + '.yaml')}:1:1: family {family} is policed by the bundled "
                        f"policies ({first.source}) but by none of these files; restore it, or waive it "
                        f"with a reason (waive: [{{family: {family}, reason: ...}}])")
    return problems


def policy_problems(policies: PolicySet, directory: Path, specs: list[SpecIndex]) -> list[str]:
    """The mistakes that would silently uncover a place: run by `check`, at start-up and on reload."""
    from .load import bundled_policies, load_policies

    problems = location_problems(policies, specs)
    bundled_dir = bundled_policies()
    if directory.resolve() != bundled_dir.resolve():
        problems += dropped_families(policies, load_policies(bundled_dir), directory)
    return problems
