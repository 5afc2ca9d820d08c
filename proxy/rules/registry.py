"""The rule registry: the one place that knows the rules. A value, not a global: the bundled registry
(`proxy.rules.BUNDLED`) is the default everywhere, and a test can build one with a rule added.

Built once at start-up; an incomplete rule (a respond action without an apply order, an action
without a spec, a check action that checks nothing, a setting whose default is not one of its values,
a fact nobody resolves, two rules claiming one name) stops it with every problem named.
"""

from __future__ import annotations

from typing import Any

from ..yamldoc import ConfigError
from .base import COVERED_KINDS, VIEWER_FACTS, ActionDef, RuleDef, Setting

CORE_PERMISSIONS = frozenset({"matters", "documents", "contacts", "billing"})
"""Permissions a settings file may grant whatever the rules: the API's own areas."""
CORE_FACTS = ("who_am_i",)
"""The fact queries every policy set names: who is calling is asked for every policed request."""


class Registry:
    def __init__(self, rules: tuple[RuleDef, ...]) -> None:
        problems = registry_problems(rules)
        if problems:
            raise ConfigError(problems)
        self.rules = rules
        self.rule_names = tuple(r.name for r in rules)
        self.by_rule: dict[str, RuleDef] = {r.name: r for r in rules}
        self.actions: dict[str, tuple[RuleDef, ActionDef[Any]]] = {
            a.name: (r, a) for r in rules for a in r.actions}
        self.settings: dict[str, Setting] = {r.setting.key: r.setting for r in rules if r.setting is not None}
        self.permissions = CORE_PERMISSIONS.union(*(r.permissions for r in rules))
        self.fact_queries = tuple(dict.fromkeys(
            (*CORE_FACTS, *(q for r in rules for fact in r.facts for q in VIEWER_FACTS[fact]))))

    def respond_actions(self) -> list[str]:
        return [name for name, (_, a) in self.actions.items() if a.is_respond]

    def check_actions(self) -> list[str]:
        return [name for name, (_, a) in self.actions.items() if not a.is_respond]

    def with_rule(self, rule: RuleDef) -> Registry:
        return Registry((*self.rules, rule))


def registry_problems(rules: tuple[RuleDef, ...]) -> list[str]:
    """Every way these rules are incomplete or collide, one line each (empty: usable)."""
    out: list[str] = []
    rule_names: set[str] = set()
    action_names: dict[str, str] = {}
    orders: dict[int, str] = {}
    keys: set[str] = set()
    for rule in rules:
        if rule.name in rule_names:
            out.append(f"rule {rule.name}: defined twice")
        rule_names.add(rule.name)
        if not rule.actions:
            out.append(f"rule {rule.name}: has no action")
        setting = rule.setting
        if setting is not None:
            if setting.key in keys or setting.key == "permissions":
                out.append(f"rule {rule.name}: setting {setting.key!r} is already taken")
            keys.add(setting.key)
            if not setting.values or setting.default not in setting.values:
                out.append(f"rule {rule.name}: setting {setting.key!r}: the default {setting.default!r} "
                           f"is not one of {list(setting.values)}")
        for fact in rule.facts:
            if fact not in VIEWER_FACTS:
                out.append(f"rule {rule.name}: needs fact {fact!r}, which nothing resolves "
                           f"(known: {', '.join(VIEWER_FACTS)})")
        for action in rule.actions:
            where = f"rule {rule.name}: action {action.name}"
            if action.name in action_names:
                out.append(f"{where}: the name is already an action of {action_names[action.name]}")
            action_names.setdefault(action.name, rule.name)
            if action.spec is None:
                out.append(f"{where}: has no spec (what a policy line may say for it)")
            if unknown := sorted(action.covers - COVERED_KINDS):
                out.append(f"{where}: covers unknown kinds {unknown}")
            if action.is_respond:
                if action.respond is None:
                    out.append(f"{where}: has an apply order but no respond rule")
                if action.order is None:
                    out.append(f"{where}: has no apply order")
                elif action.order in orders:
                    out.append(f"{where}: apply order {action.order} is also {orders[action.order]}'s")
                else:
                    orders[action.order] = action.name
                if action.check is not None or action.record_check is not None:
                    out.append(f"{where}: acts on both responses and requests")
                if action.filters and action.visible is None:
                    out.append(f"{where}: filters records but says nothing of the visible set to count")
            elif action.check is None and action.record_check is None:
                out.append(f"{where}: neither responds nor checks anything")
    return out
