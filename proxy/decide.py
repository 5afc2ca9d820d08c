"""Decide, then apply: pure functions from (plan, record, viewer) to decisions, and decisions to a record.

Dry-run is "decide and log, skip apply": one branch, not a second code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from .errors import UndecidableError
from .facts.settings import UserSettings
from .facts.viewer import Viewer
from .policy.fields import (
    DEFAULT_NESTED,
    DEFAULT_SELECTION,
    Added,
    Need,
    Selection,
    Shaping,
    augment,
    parse_fields,
    selected_names,
)
from .policy.model import Binding, Location, Name, Route, Shape
from .rules.base import Judge, RespondRule
from .rules.contacts import restricted as contacts_restricted
from .sentinel import Place, unread_places


@dataclass(slots=True)
class Decision:
    """One object to redact or record to drop. Not frozen: a frozen dataclass sets each field through
    object.__setattr__, and a restricted page makes one of these per hidden object."""

    step: Step               # the compiled binding that decided
    path: str                 # JSON path of the object, e.g. data[3].vendor
    obj: Any = field(compare=False, repr=False)  # None: decided by the compiled scanner (proxy.native)
    container: Any = field(default=None, compare=False, repr=False)  # None: obj is the record
    key: str | int | None = field(default=None, compare=False, repr=False)
    ident: int | None = field(default=None, compare=False, repr=False)  # the scanner's object id

    @property
    def rule(self) -> Name:
        return self.step.binding.rule

    @property
    def action(self) -> Name:
        return self.step.action

    @property
    def object_id(self) -> int | None:
        """The decided object's id, for logs and the trail (no value of it)."""
        if self.obj is None:
            return self.ident
        value = self.obj.get("id") if isinstance(self.obj, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request needs: the bindings that apply to this caller and selection, and the fields."""

    bindings: tuple[Binding[Any], ...]
    upstream_selection: Selection | None  # None: the client's request is forwarded as it is
    added: Added
    shape: Shaping | None = None  # a restricted caller's records keep only this (what was asked upstream)
    # Where the backend's etags are replaced by the proxy's on every record, decided or not (see make_plan).
    seal_at: tuple[Location, ...] = ()
    # Derived once, read per record or per request (not part of a plan's value):
    steps: tuple[Step, ...] = field(default=(), compare=False)  # bindings compiled for decide, in apply order
    strips: bool = field(default=False, compare=False)   # whether augmentation added anything to strip
    # the binding that may drop records (meta.records recounted), if any
    filters: Binding[Any] | None = field(default=None, compare=False)
    touches: bool = field(default=False, compare=False)  # whether records are read at all; if not, sent as they came
    # The selected places no step reads, for the sentinel (a contacts-restricted caller only; see make_plan).
    unread: tuple[Place, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        ordered = sorted(self.bindings, key=_apply_order)
        object.__setattr__(self, "steps", tuple(Step.of(b) for b in ordered))
        object.__setattr__(self, "strips", bool(self.added))
        object.__setattr__(self, "filters", next((b for b in self.bindings if b.definition.filters), None))
        object.__setattr__(self, "touches",
                           bool(self.steps) or self.strips or self.shape is not None or bool(self.seal_at))

    def bind(self, viewer: Viewer) -> Bound:
        judged = tuple((step.whole, step.key, step.rule.judge(step.binding, viewer), step) for step in self.steps)
        return Bound(self, viewer, judged)


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One binding ready for decide: its rule looked up, and how to reach its objects: the record
    itself (`whole`), one plain key (`vendor`: a single lookup, the common case), or the
    location's generic find. Compared and hashed by identity: decisions are counted per step."""

    binding: Binding[Any]
    action: Name
    rule: RespondRule
    whole: bool
    key: str | None
    redact: Callable[[dict[str, Any]], dict[str, Any]]  # the rule's, looked up once
    filters: bool  # the record is dropped, not redacted
    names: tuple[str, str]  # (rule, action) as the trail and the logs write them

    @staticmethod
    def of(binding: Binding[Any]) -> Step:
        at = binding.at
        key = at.steps[0][0] if at is not None and len(at.steps) == 1 and not at.steps[0][1] else None
        rule = _respond(binding)
        return Step(binding, binding.action, rule, at is None, key, rule.redact, binding.definition.filters,
                    (binding.rule.value, binding.action.value))


def _respond(binding: Binding[Any]) -> RespondRule:
    rule = binding.definition.respond
    assert rule is not None  # the loader binds only respond actions to `respond:`
    return rule


def _apply_order(binding: Binding[Any]) -> int:
    order = binding.definition.order
    assert order is not None  # the registry refuses a respond action without one
    return order


@dataclass(frozen=True, slots=True)
class Bound:
    """A plan bound to one caller: each step's judgement built for this viewer, once per request."""

    plan: Plan
    viewer: Viewer
    judged: tuple[tuple[bool, str | None, Judge, Step], ...]  # (whole, key, judge, step): unpacked per record


class PlanCache:
    """Plans of one policy set, one per (route, caller's settings, `fields` text, index), bounded.

    A plan depends on nothing else: rules choose by settings alone (RespondRule.active, reads).
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._plans: LRUCache[tuple[str, UserSettings, str | None, bool], Plan] = LRUCache(maxsize)

    def get(self, route: Route, settings: UserSettings, fields_text: str | None, *, index: bool) -> Plan:
        key = (route.template, settings, fields_text, index)
        plan = self._plans.get(key)
        if plan is None:
            client = parse_fields(fields_text) if fields_text is not None else None
            plan = self._plans[key] = make_plan(route, settings, client, index=index)
        return plan


def make_plan(route: Route, settings: UserSettings, client: Selection | None, *, index: bool = True) -> Plan:
    """Choose the bindings that can change something for this caller, and the fields they read.

    `index`: the answer is a list (a GET of an index route); filters apply to lists only, the answer
    to a write being the one object written.

    A caller any rule of the route restricts gets every record shaped to the selection asked of the
    backend (`Plan.shape`), whether or not the client selected what the rules decide on: a backend
    that ignores `fields` must not carry hidden data in members nobody decides. A show route about
    one id (`/contacts/{id}`) always fetches `id`, so the answer can be checked to be that record.
    """
    selection = client if client is not None else DEFAULT_SELECTION
    bindings: list[Binding[Any]] = []
    needs: list[Need] = []
    if names_one_record(route):
        needs.append(Need("id", always=True))
    restricted = any(_respond(b).active(settings) for b in route.respond)
    undecided: list[Binding[Any]] = []
    for binding in route.respond:
        if binding.definition.filters and not index:
            continue
        rule = _respond(binding)
        if not rule.active(settings):
            continue
        here = _names_at(selection, binding)
        if here is None or (rule.targets is not None and not (rule.targets & here)
                            and not (rule.keeps is not None and here - rule.keeps)):
            # The client selected neither the location nor what the rule changes: nothing to decide.
            undecided.append(binding)
            continue
        bindings.append(binding)
        needs.extend(_needs(binding, rule.reads(binding, settings)))
    upstream, added = augment(selection, needs)
    shape = None
    if restricted:
        decided = frozenset(tuple(k for k, _ in b.at.steps) for b in bindings if b.at is not None and b.at.steps)
        shape = Shaping(upstream, decided)
    seal_at = _seal_at(undecided)
    # What the client selected that no binding reads, where the sentinel looks for hidden contacts.
    unread = unread_places(selection, route.respond) if contacts_restricted(settings) else ()
    if upstream == selection:
        return Plan(tuple(bindings), None, added, shape, seal_at, unread=unread)
    return Plan(tuple(bindings), upstream, added, shape, seal_at, unread=unread)


def names_one_record(route: Route) -> bool:
    """A show route whose path ends in the record's id: its answer must be that record."""
    return route.shape is Shape.SHOW and bool(route.segments) and route.segments[-1] is None


RECORD = Location((), ".")


def _seal_at(undecided: list[Binding[Any]]) -> tuple[Location, ...]:
    """A rule this caller is under that was not decided (its fields not asked for) still has hidden
    values in the backend's etags the client may have asked for: the record's, and those of the
    objects on the way to the rule's location (a task's etag digests its assignee's name). Those are
    replaced by the proxy's tags on every record, without deciding (no fields to add)."""
    if not undecided:
        return ()
    places: dict[Location, None] = {RECORD: None}
    for binding in undecided:
        path = binding.at.steps if binding.at is not None else ()
        for depth in range(1, len(path) + 1):
            steps = path[:depth]
            places[Location(steps, ".".join(key + "[]" * is_list for key, is_list in steps))] = None
    return tuple(places)


def _names_at(selection: Selection, binding: Binding[Any]) -> frozenset[str] | None:
    """The field names the client selected at the binding's location (None: location not selected)."""
    if binding.at is None:
        return selected_names(selection)
    top = next((f for f in selection if f.name == binding.at.top), None)
    if top is None:
        return None
    if len(binding.at.steps) == 1:
        return frozenset(top.sub) if top.sub is not None else DEFAULT_NESTED
    if top.sub is None or binding.at.steps[1][0] not in top.sub:
        # `matter_bill_recipients{id,etag}` leaves the recipient out: nothing there to decide on (its
        # etags, which digest it, are sealed as an undecided rule's are: Plan.seal_at).
        return None
    return DEFAULT_NESTED


def _needs(binding: Binding[Any], reads: tuple[tuple[str, str | None], ...]) -> list[Need]:
    if binding.at is None:
        return [Need(name, sub, always=True) for name, sub in reads]
    if len(binding.at.steps) == 1:
        return [Need(binding.at.steps[0][0], name) for name, _ in reads]
    return []  # two levels down the backend gives the nested defaults (id, type): nothing to add


def decide(record: Any, path: str, bound: Bound) -> list[Decision]:
    """The decisions for one record (`path` is its JSON path, e.g. data[3]), in the order apply
    carries them out. Raises UndecidableError."""
    out: list[Decision] = []
    for whole, key, hidden, step in bound.judged:
        if whole:
            if hidden(record):
                out.append(Decision(step, path, record))
            continue
        if key is not None:
            obj = record.get(key) if isinstance(record, dict) else None
            if obj is not None and hidden(obj):
                out.append(Decision(step, f"{path}.{key}", obj, record, key))
            continue
        at = step.binding.at
        assert at is not None
        try:
            found = at.find(record)
        except TypeError:
            raise UndecidableError(f"`{at.text}` has an unexpected shape") from None
        for suffix, container, where, obj in found:
            if hidden(obj):
                out.append(Decision(step, path + suffix, obj, container, where))
    return out


def apply(record: dict[str, Any], decisions: list[Decision]) -> dict[str, Any] | None:
    """Carry out the decisions (in decide's order) on one record; None when it is filtered out."""
    for decision in decisions:
        step = decision.step
        if step.filters:
            return None
        container = decision.container
        if container is None:
            record = step.redact(record)  # a rule may replace the record itself (a contact stub)
        else:
            assert decision.key is not None
            target = container[decision.key]
            if isinstance(target, dict):  # always, as judges refuse anything else: kept for the type
                container[decision.key] = step.redact(target)
    return record
