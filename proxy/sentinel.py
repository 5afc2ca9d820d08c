"""The run-time sentinel (issue 10, item 3): contacts hidden from a restricted caller, found in the
JSON answers of endpoints no policy covers, counted and logged by bounded templates, or stubbed.

Pure: templates, the scan and the ledger of what was already logged. The relay (proxy/http/relay.py)
decides when a body is scanned.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from .facts.settings import Settings
from .rules import contacts
from .rules.contacts import stub

CONTACT_TYPES = frozenset({"person", "company", "contact"})
"""Contact types, compared case- and space-insensitively: a sloppy backend's `person` or `Contact ` is one too."""


class SentinelMode(StrEnum):
    OFF = "off"
    REPORT = "report"
    REDACT = "redact"


CONTACT_KEYS: Final = frozenset({
    "contact", "contacts", "client", "clients", "vendor", "destination_contact", "related_contacts",
    "company", "medical_provider", "recipient",
})
"""Members the public spec (clio/openapi.json) types as a Contact: an object with an integer id there
is a contact even when the client's `fields` left its `type` out (unless it has a non-contact type)."""

ROUTE_SEGMENTS: Final = 3
"""Route labels keep this many segments below the base path: `/clio_payments/links/{id}`."""
PATH_DEPTH: Final = 8
MAX_LABELS: Final = 500
"""Distinct (route, path) pairs counted and logged; past it, new ones share one overflow label."""
OVERFLOW: Final = "{overflow}"

_WORD: Final = re.compile(r"[a-z][a-z0-9_\-]{0,63}\Z")
_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def may_restrict_contacts(settings: Settings) -> bool:
    """Whether any caller can have restricted contacts: if none can, who_am_i is never asked."""
    entries = [settings.defaults, *settings.roles.values(), *settings.users.values()]
    return any(e.get(contacts.SETTING.key) == contacts.RESTRICTED for e in entries)


def route_template(segments: tuple[str, ...], base: tuple[str, ...]) -> str:
    """A bounded label for an unpoliced path: numbers become `{id}`, odd segments `{x}`, at most
    ROUTE_SEGMENTS below the base (`/...` marks the cut); paths outside the base start with `!`."""
    inside = segments[:len(base)] == base and len(segments) > len(base)
    rel = segments[len(base):] if inside else segments
    out = ["{id}" if s.isdigit() else s if _WORD.match(s) else "{x}" for s in rel[:ROUTE_SEGMENTS]]
    if len(rel) > ROUTE_SEGMENTS:
        out.append("...")
    return ("/" if inside else "!/") + "/".join(out)


@dataclass(frozen=True, slots=True)
class Finding:
    path: str        # a field path template: `data[].contact`, never an index or a value
    object_id: int


Trail = tuple["Trail", "str | None"] | None
"""How a container was reached: (the parent's trail, its key, or None for an array element)."""


def scan(doc: Any, hidden: Callable[[int], bool], *, redact: bool) -> tuple[Any, list[Finding]]:
    """Every contact-shaped object whose id `hidden` says the caller may not see; with `redact`,
    each becomes the redacted stub in place. Iterative: a deep document cannot exhaust the stack.
    Paths are built only for findings: a document is mostly scalars, walked at C speed."""
    findings: list[Finding] = []
    if _hidden_contact(doc, None, hidden):
        findings.append(Finding(".", doc["id"]))
        return (stub(doc) if redact else doc), findings
    stack: list[tuple[Any, Trail, str | None]] = [(doc, None, None)]
    while stack:
        node, trail, member = stack.pop()
        pairs: Any = node.items() if type(node) is dict else enumerate(node)
        for k, value in pairs:
            kind = type(value)
            if kind is not dict and kind is not list:
                continue
            key = k if type(k) is str else None  # None: an array element
            name = key if key is not None else member
            if kind is dict and "id" in value and _hidden_contact(value, name, hidden):
                findings.append(Finding(_path((trail, key)), value["id"]))
                if redact:
                    node[k] = stub(value)
                continue
            stack.append((value, (trail, key), name))
    return doc, findings


def _hidden_contact(obj: Any, member: str | None, hidden: Callable[[int], bool]) -> bool:
    if not isinstance(obj, dict):
        return False
    contact_id = obj.get("id")
    if isinstance(contact_id, bool) or not isinstance(contact_id, int):
        return False
    kind = obj.get("type")
    if (isinstance(kind, str) and kind.strip().lower() in CONTACT_TYPES) or (kind is None and member in CONTACT_KEYS):
        return hidden(contact_id)
    return False


def _path(trail: Trail) -> str:
    """`data[].contact`: indexes collapsed, odd keys `{key}`, at most PATH_DEPTH steps."""
    steps: list[str | None] = []
    while trail is not None:
        trail, key = trail
        steps.append(key)
    out = ""
    for depth, key in enumerate(reversed(steps)):
        if depth >= PATH_DEPTH:
            return out + "..."
        if key is None:
            out += "[]"
        else:
            name = key if _KEY.match(key) else "{key}"
            out = f"{out}.{name}" if out else name
    return out


@dataclass(slots=True)
class Ledger:
    """Which (route, path) pairs were seen: each is logged once, and labels stay a closed set."""

    limit: int = MAX_LABELS
    seen: set[tuple[str, str]] = field(default_factory=set)
    _settings: tuple[Settings, bool] | None = None

    def may_restrict(self, settings: Settings) -> bool:
        """may_restrict_contacts, once per settings object (they are swapped whole on reload)."""
        if self._settings is None or self._settings[0] is not settings:
            self._settings = (settings, may_restrict_contacts(settings))
        return self._settings[1]

    def label(self, route: str, path: str) -> tuple[tuple[str, str], bool]:
        """The labels to count under, and whether this is their first finding (log it)."""
        pair = (route, path)
        if pair in self.seen:
            return pair, False
        if len(self.seen) >= self.limit:
            pair = (OVERFLOW, OVERFLOW)
            if pair in self.seen:
                return pair, False
        self.seen.add(pair)
        return pair, True
