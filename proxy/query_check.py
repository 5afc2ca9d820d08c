"""Ordering or filtering by a field hidden from the caller is refused (SPEC 6), before the backend.

Records sorted by a hidden value give away its rank (`order=quantity(asc)`), and a filter on it
(`?total=120`, a name search over a redacted client) tells its value by what it selects. Which
fields are hidden, and where, comes from the route's response bindings and the caller's settings;
the shell only calls this. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .check import Violation
from .errors import BadRequestError
from .facts.settings import UserSettings
from .policy.model import Action, Binding, Route
from .rules import RESPOND_RULES
from .rules.activity_hours import HOURS_FIELDS
from .rules.billing_rate import RATE_FIELDS

PAGING = frozenset({"fields", "limit", "page_token", "offset"})
"""Parameters that select no records by a value."""

STUB_FIELDS = frozenset({"id", "type"})
"""What a redacted contact stub keeps (besides the masked name): ordering or filtering by these tells nothing."""

VISIBLE_BY_DEFINITION = frozenset({("matters", "client"), ("matters", "custom_field_values[].contact")})
"""(family, location) of contacts that 4.0.9 makes visible to whoever sees the record: a matter's client and
its contact custom fields belong to a matter the caller can see. Ordering matters by their client's name, or
the matters `query` search (which also matches the client's name), ranks and selects only visible names, so
both stay allowed; the bindings still stub such a contact should the backend ever disagree."""


@dataclass(frozen=True, slots=True)
class Hidden:
    """Fields a binding hides under one location (`""` is the record itself); `names` None: all but the stub's."""

    prefix: str
    names: frozenset[str] | None
    binding: Binding

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
    """What the route's response rules hide from a caller with these settings."""
    out: list[Hidden] = []
    for binding in route.respond:
        rule = RESPOND_RULES.get(binding.action)
        if rule is None or not rule.active(settings):
            continue
        prefix = _prefix(binding)
        if binding.action is Action.REDACT_HOURS:
            out.append(Hidden(prefix, frozenset(HOURS_FIELDS), binding))
        elif binding.action is Action.REDACT_RATE:
            out.append(Hidden(prefix, frozenset(RATE_FIELDS), binding))
        elif binding.action is Action.REDACT_CONTACT:
            if binding.at is not None and (route.family, binding.at.text) in VISIBLE_BY_DEFINITION:
                continue
            out.append(Hidden(prefix, None, binding))
        # FILTER_CONTACTS drops hidden records: what is left may be ordered and filtered freely.
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


def _prefix(binding: Binding) -> str:
    if binding.at is None:
        return ""
    return ".".join(key for key, _ in binding.at.steps)
