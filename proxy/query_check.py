"""Ordering or filtering by a field hidden from the caller is refused (SPEC 6), before the backend.

Records sorted by a hidden value give away its rank (`order=quantity(asc)`), and a filter on it
(`?total=120`, a name search over a redacted client) tells its value by what it selects. Which
fields are hidden, and where, comes from the route's response bindings and the caller's settings;
the shell only calls this. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .check import Violation
from .errors import BadRequestError
from .facts.settings import UserSettings
from .policy.model import Binding, Route

PAGING = frozenset({"fields", "limit", "page_token", "offset"})
"""Parameters that select no records by a value."""

STUB_FIELDS = frozenset({"id", "type"})
"""What a redacted contact stub keeps (besides the masked name): ordering or filtering by these tells nothing."""

@dataclass(frozen=True, slots=True)
class Hidden:
    """Fields a binding hides under one location (`""` is the record itself); `names` None: all but the stub's."""

    prefix: str
    names: frozenset[str] | None
    binding: Binding[Any]

    def covers(self, field: str) -> bool:
        rest: str | None = field
        if self.prefix:
            rest = None
            for sep in (".", "_"):  # `client.name`, and the spec's `client_name` spelling of it
                if field.startswith(self.prefix + sep):
                    rest = field[len(self.prefix) + 1:]
        if not rest:
            return False
        if self.names is None:
            return rest.partition(".")[0] not in STUB_FIELDS
        return rest in self.names


def hidden_fields(route: Route, settings: UserSettings) -> list[Hidden]:
    """What the route's response rules hide from a caller with these settings: each action says what
    it hides (`ActionDef.hides`); a filter hides nothing (what is left may be ordered freely)."""
    out: list[Hidden] = []
    for binding in route.respond:
        definition = binding.definition
        if definition.hides is None or definition.respond is None or not definition.respond.active(settings):
            continue
        hiding = definition.hides(binding, route.family)
        if hiding is not None:
            out.append(Hidden(_prefix(binding), hiding.names, binding))
    return out


def check_query(
    route: Route, method: str, query: tuple[tuple[str, str], ...], settings: UserSettings
) -> list[Violation]:
    """A violation for each `order` key and filter parameter that names a field hidden from this caller."""
    if method != "GET":
        return []  # a policed write takes no parameter but `fields` (policed.py)
    hidden = hidden_fields(route, settings)
    if not hidden:
        return []
    out: list[Violation] = []
    for key, value in query:
        if key in PAGING:
            continue
        if key == "order":
            named = [_order_field(part) for part in value.split(",")]
        else:
            named = [key.partition("[")[0].lower()]  # `total`, `ids[]`, `quantity[gt]`
        for name in named:
            for h in hidden:
                if h.covers(name):
                    out.append(Violation(h.binding, BadRequestError(
                        f"{h.binding.rule}: ordering or filtering by `{name}` is not allowed for you",
                        rule=h.binding.rule), None))
                    break
    return out


def _order_field(part: str) -> str:
    """`quantity(asc)` -> `quantity`; the direction (and any case or spacing) does not matter."""
    return part.partition("(")[0].strip().lower()


def _prefix(binding: Binding[Any]) -> str:
    if binding.at is None:
        return ""
    return ".".join(key for key, _ in binding.at.steps)
