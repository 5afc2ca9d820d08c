"""The run-time sentinel (issue 10, item 3): contacts hidden from a restricted caller, found in the
JSON answers of endpoints no policy covers and at the places of policed answers no step reads,
counted and logged by bounded templates, or stubbed.

Pure: templates, the scan, the places of a plan and the ledger of what was already logged. The relay
(proxy/http/relay.py) decides when an unpoliced body is scanned; the transform (proxy/transform.py)
scans a policed record's unread places when the exchange hands it a GapScan (proxy/http/gaps.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

from .facts.settings import Settings
from .policy.fields import Selection
from .policy.model import Binding
from .policy.spec import Kind, bundled_specs
from .rules import contacts
from .rules.contacts import MASK, stub

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


def scan(
    doc: Any, hidden: Callable[[int], bool], *, redact: bool, spare: Collection[int] | None = None,
) -> tuple[Any, list[Finding]]:
    """Every contact-shaped object whose id `hidden` says the caller may not see; with `redact`,
    each becomes the redacted stub in place. Iterative: a deep document cannot exhaust the stack.
    Paths are built only for findings: a document is mostly scalars, walked at C speed.
    With `spare` (a policed answer), objects whose id() is in it (a rule decided them) and stubs
    are neither findings nor walked into."""
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
            if kind is dict and "id" in value and spare is not None and (id(value) in spare or is_stub(value)):
                continue
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


# --- Policed answers: the places no policy step reads ----------------------------------------------

@dataclass(frozen=True, slots=True)
class Place:
    """A selected place of a policed record that no step reads: a top-level member (`sub` None: the
    member and all it holds), or one member inside a bound member's braces (`vendor{company}`)."""

    top: str
    sub: str | None = None


@functools.cache
def contact_free_names() -> frozenset[str]:
    """Member names the bundled public specs know and never type as a contact or a participant
    (`matter`, `user`, `quantity`): a well-formed answer holds no contact there, once shaped. Names
    the specs do not know, and CONTACT_KEYS, are never in it. Read once, at the first restricted plan."""
    specs = bundled_specs()
    contactish = {Kind.CONTACT, Kind.PARTICIPANT}
    known: set[str] = set()
    maybe: set[str] = set(CONTACT_KEYS)
    for spec in specs:
        for schema in spec.schemas.values():
            for name, (inner, _) in schema.fields.items():
                known.add(name)
                if inner is None:
                    continue
                kinds = [k for other in specs if inner in other.schemas for k in other.schemas[inner].kinds]
                if not any(other for other in specs if inner in other.schemas) or contactish & set(kinds):
                    maybe.add(name)
    return frozenset(known - maybe)


def unread_places(selection: Selection, bindings: Iterable[Binding[Any]]) -> tuple[Place, ...]:
    """The selected places of a record no binding of the route reads that could hold a contact: a
    top-level member no binding names (the member and what it holds), else the members inside its
    braces; inside the braces of a member a binding names, each member no binding reaches
    (`custom_field_values[].contact` is reached). Names the public specs never type as a contact
    (contact_free_names) are left out: the list is empty for most plans, and an empty list costs
    nothing per record."""
    tops: set[str] = set()
    deeper: set[tuple[str, str]] = set()
    for binding in bindings:
        steps = binding.at.steps if binding.at is not None else ()
        if steps:
            tops.add(steps[0][0])
            if len(steps) > 1:
                deeper.add((steps[0][0], steps[1][0]))
    free = contact_free_names()
    out: list[Place] = []
    for f in selection:
        if f.name not in tops and f.name not in free:
            out.append(Place(f.name))
            continue
        out.extend(Place(f.name, sub) for sub in f.sub or () if sub not in free and (f.name, sub) not in deeper)
    return tuple(out)


class Decided(Protocol):
    """What the gap scan reads of a policy decision (proxy.decide.Decision)."""

    @property
    def obj(self) -> Any: ...

    @property
    def rule(self) -> str: ...


@dataclass(slots=True)
class GapScan:
    """One request's scan of the places no step reads (Plan.unread), for a restricted caller with the
    sentinel on: findings collected here (the shell counts and logs them once the answer is done);
    with `redact`, each hidden contact becomes the stub in place. Pure: no I/O, no clock."""

    hidden: Callable[[int], bool]
    redact: bool
    found: list[Finding] = field(default_factory=list)
    redacted: int = 0  # how many stubs it made: a record it did not change may go out as it came

    def check(self, record: dict[str, Any], path: str, places: tuple[Place, ...],
              decisions: Iterable[Decided] = ()) -> list[Any]:
        """Scan one record (after its decisions were applied) at `places`; `path` is its JSON path
        (`data[3]`). Objects the contacts rule decided are not scanned again (in dry-run they are
        still there, unapplied). Returns the objects it changed the contents of (the record and the
        members holding a stub), whose etags digest what was hidden."""
        spared = {id(d.obj) for d in decisions if d.rule == contacts.RULE.name}
        if id(record) in spared:
            return []  # the record itself is a hidden contact: the rule stubs or drops it whole
        prefix = path.partition("[")[0] + "[]" if "[" in path else path
        changed: list[Any] = []
        for place in places:
            value = record.get(place.top)
            if type(value) is not dict and type(value) is not list:
                continue
            top = _label(place.top)
            if place.sub is None:
                if id(value) not in spared:
                    self._scan(record, place.top, f"{prefix}.", spared, changed)
                continue
            for holder, where in _holders(value, f"{prefix}.{top}"):
                if id(holder) not in spared and place.sub in holder and self._scan(
                        holder, place.sub, f"{where}.", spared, changed):
                    changed.append(holder)
        if changed:
            changed.append(record)
        return changed

    def _scan(self, holder: dict[str, Any], key: str, prefix: str, spared: set[int], changed: list[Any]) -> bool:
        """Scan holder[key] (the member and what it holds); True when a stub was put there."""
        wrapper = {key: holder[key]}
        _, findings = scan(wrapper, self.hidden, redact=self.redact, spare=spared)
        if not findings:
            return False
        self.found.extend(Finding(prefix + f.path, f.object_id) for f in findings)
        if not self.redact:
            return False
        holder[key] = wrapper[key]
        self.redacted += len(findings)
        changed.extend(_objects_in(holder[key]))  # those on the way to a stub (shaping keeps them shallow)
        return True


def _holders(value: Any, where: str) -> list[tuple[dict[str, Any], str]]:
    """The objects of a member's value with their path templates: itself, or a list's (lists of lists too)."""
    if type(value) is dict:
        return [(value, where)]
    out: list[tuple[dict[str, Any], str]] = []
    if type(value) is list:
        for item in value:
            out.extend(_holders(item, where + "[]"))
    return out


def _objects_in(value: Any) -> list[dict[str, Any]]:
    """Every object in a value, itself included (iterative)."""
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            out.append(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return out


def _label(key: str) -> str:
    return key if _KEY.match(key) else "{key}"


def is_stub(obj: dict[str, Any]) -> bool:
    """The redacted stub (proxy.rules.contacts.stub), however it got there: nothing hidden is in it."""
    return obj.get("redacted") is True and obj.keys() <= _STUB_KEYS and obj.get("name", MASK) == MASK


_STUB_KEYS: Final = frozenset({"id", "name", "type", "redacted"})
