"""Decide, then apply: pure functions from (plan, record, viewer) to decisions, and decisions to a record.

Dry-run is "decide and log, skip apply": one branch, not a second code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import UndecidableError
from .facts.viewer import Viewer
from .policy.fields import (
    DEFAULT_NESTED,
    DEFAULT_SELECTION,
    Added,
    Need,
    Selection,
    augment,
    selected_names,
)
from .policy.model import Action, Binding, Route, Rule
from .rules import RESPOND_RULES
from .rules.base import RespondRule

_APPLY_ORDER = {
    Action.FILTER_CONTACTS: 0,
    Action.REDACT_CONTACT: 1,
    Action.REDACT_HOURS: 2,
    Action.REDACT_RATE: 3,  # after hours: `total` is removed, not left null
}


@dataclass(frozen=True, slots=True)
class Decision:
    rule: Rule
    action: Action
    path: str                 # JSON path of the object, e.g. data[3].vendor
    obj: Any = field(compare=False, repr=False)
    container: Any = field(default=None, compare=False, repr=False)
    key: str | int | None = field(default=None, compare=False, repr=False)

    @property
    def object_id(self) -> int | None:
        """The decided object's id, for logs: read only when a decision is logged."""
        value = self.obj.get("id") if isinstance(self.obj, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request needs: the bindings that apply to this caller and selection, and the fields."""

    bindings: tuple[Binding, ...]
    upstream_selection: Selection | None  # None: the client's request is forwarded as it is
    added: Added
    rules: tuple[tuple[Binding, RespondRule], ...] = ()  # the bindings with their rules, looked up once

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple((b, RESPOND_RULES[b.action]) for b in self.bindings))

    @property
    def filters(self) -> bool:
        return any(b.action is Action.FILTER_CONTACTS for b in self.bindings)


def make_plan(route: Route, viewer: Viewer, client: Selection | None, *, index: bool = True) -> Plan:
    """Choose the bindings that can change something for this caller, and the fields they read.

    `index`: the answer is a list (a GET of an index route); filters apply to lists only, the answer
    to a write being the one object written.
    """
    selection = client if client is not None else DEFAULT_SELECTION
    bindings: list[Binding] = []
    needs: list[Need] = []
    for binding in route.respond:
        if binding.action is Action.FILTER_CONTACTS and not index:
            continue
        rule = RESPOND_RULES[binding.action]
        if not rule.active(viewer):
            continue
        here = _names_at(selection, binding)
        if here is None:
            continue  # the client did not select the location: nothing there to decide on
        if rule.targets is not None and not (rule.targets & here):
            continue  # none of the fields the rule changes were asked for
        bindings.append(binding)
        needs.extend(_needs(binding, rule.reads(binding, viewer)))
    if not needs:
        return Plan(tuple(bindings), None, Added())
    upstream, added = augment(selection, needs)
    if not added:
        return Plan(tuple(bindings), None, added)
    return Plan(tuple(bindings), upstream, added)


def _names_at(selection: Selection, binding: Binding) -> frozenset[str] | None:
    """The field names the client selected at the binding's location (None: location not selected)."""
    if binding.at is None:
        return selected_names(selection)
    top = next((f for f in selection if f.name == binding.at.top), None)
    if top is None:
        return None
    if len(binding.at.steps) == 1 and top.sub is not None:
        return frozenset(top.sub)
    return DEFAULT_NESTED


def _needs(binding: Binding, reads: tuple[tuple[str, str | None], ...]) -> list[Need]:
    if binding.at is None:
        return [Need(name, sub, always=True) for name, sub in reads]
    if len(binding.at.steps) == 1:
        return [Need(binding.at.steps[0][0], name) for name, _ in reads]
    return []  # two levels down the backend gives the nested defaults (id, type): nothing to add


def decide(record: Any, path: str, plan: Plan, viewer: Viewer) -> list[Decision]:
    """The decisions for one record (`path` is its JSON path, e.g. data[3]). Raises UndecidableError."""
    out: list[Decision] = []
    for binding, rule in plan.rules:
        if binding.at is None:
            if rule.hidden(record, binding, viewer):
                out.append(Decision(rule.rule, binding.action, path, record))
            continue
        try:
            found = binding.at.find(record)
        except TypeError:
            raise UndecidableError(f"`{binding.at.text}` has an unexpected shape") from None
        for suffix, container, key, obj in found:
            if rule.hidden(obj, binding, viewer):
                out.append(Decision(rule.rule, binding.action, path + suffix, obj, container, key))
    return out


def apply(record: dict[str, Any], decisions: list[Decision]) -> dict[str, Any] | None:
    """Carry out the decisions on one record; None when the record is filtered out."""
    holder: list[Any] = [record]
    ordered = decisions if len(decisions) < 2 else sorted(decisions, key=lambda d: _APPLY_ORDER[d.action])
    for decision in ordered:
        if decision.action is Action.FILTER_CONTACTS:
            return None
        rule = RESPOND_RULES[decision.action]
        if decision.container is None:
            rule.redact(holder, 0, holder[0])
        else:
            assert decision.key is not None
            target = decision.container[decision.key]
            if isinstance(target, dict):
                rule.redact(decision.container, decision.key, target)
    result: dict[str, Any] = holder[0]
    return result

