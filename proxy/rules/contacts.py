"""Contacts visibility (4.0.9): hidden contacts become stubs, lists are filtered, writes are refused.

Seed rows: every row of the 4.0.9 table. A restricted caller sees a contact when they created it or
it belongs to a matter they can see (client, related contact, contact custom field, co-counsel).
SPEC 2.1: a participant of a type the proxy does not know is a contact; a write that would make a
hidden contact visible (relationship, matter client, custom field value, bill payer) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import BadRequestError, NotFoundError, ProxyError, UndecidableError
from ..policy.model import Binding, Location
from .base import (
    ActionDef,
    Hiding,
    Judge,
    Native,
    RuleDef,
    Setting,
    SpecReader,
    body_data,
    no_spec,
    object_id,
    read_status,
    refusal,
)

if TYPE_CHECKING:
    from ..facts.settings import UserSettings
    from ..facts.viewer import Viewer

SETTING = Setting("contacts_visibility", ("all", "restricted"), default="all")
RESTRICTED = "restricted"

MAX_ID = 2**63
"""Ids are int64: a reference past that names nothing the backend stores, and is malformed."""
MASK = "****"
"""One fixed mask for every name: its length reveals nothing."""


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]*\Z")
PARTICIPANT_NON_CONTACTS = frozenset({"User"})
"""The public spec's Participant type is Person, Company or User: only User is not a contact."""
CONTACT_TYPE_NAMES = frozenset({"Person", "Company", "Contact"})


@dataclass(frozen=True, slots=True)
class Participants:
    """`participants: true` (the API's Participant: only `User` is not a contact), or the list of the
    exact types that are not contacts at this place (`[User, Calendar]` for attendees); absent or false:
    every object at the place is a contact."""

    participants: bool = False
    non_contacts: frozenset[str] = frozenset()
    """With `participants`: the exact type spellings that are not contacts here (`User`; `Calendar`
    for attendees). Every other type, however close, is a contact."""


@dataclass(frozen=True, slots=True)
class Reference:
    """refuse_contact_reference: the status to refuse with, and whether the place is a typed list."""

    status: int
    participants: bool = False
    non_contacts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Refuse:
    """refuse_contact_value: the status to refuse with."""

    status: int


@dataclass(frozen=True, slots=True)
class Hide:
    """hide_contact: the route parameter holding the contact's id."""

    param: str


def restricted(settings: UserSettings) -> bool:
    return settings[SETTING.key] == RESTRICTED


def read_participants(reader: SpecReader) -> Participants:
    raw = reader.get("participants", False)
    if raw is False:
        return Participants()
    if raw is True:
        return Participants(True, PARTICIPANT_NON_CONTACTS)
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(t, str) and _TYPE_NAME.match(t) for t in raw)):
        reader.problem("participants", "participants: must be true, false or the list of types that are not contacts")
        return Participants()
    if contact_types := sorted(set(raw) & CONTACT_TYPE_NAMES):
        # Listing a contact type here would let hidden contacts through unjudged.
        reader.problem("participants", f"participants: {', '.join(contact_types)} are contacts")
    return Participants(True, frozenset(raw) - CONTACT_TYPE_NAMES)


def _reference_spec(reader: SpecReader) -> Reference:
    status = read_status(reader)
    typed = read_participants(reader)
    return Reference(status, typed.participants, typed.non_contacts)


def _hide_spec(reader: SpecReader) -> Hide:
    param = reader.get("param")
    if param not in reader.route_params:
        reader.problem("param", f"param: must name a route parameter {list(reader.route_params)}")
        return Hide("")
    return Hide(str(param))


def _visible_set(viewer: Viewer) -> frozenset[int]:
    if viewer.visible_contacts is None:
        raise UndecidableError("visible contacts were not resolved")
    return viewer.visible_contacts


def visible(contact_id: int, viewer: Viewer) -> bool:
    return contact_id in _visible_set(viewer)


def is_contact(obj: Any, binding: Binding[Participants] | Binding[Reference]) -> bool:
    """In a participant list only the exact non-contact types of that place (`User`; `Calendar` for
    attendees) are not contacts: `person`, `Contact `, `CONTACT` or a type never seen is judged as a
    contact, never waved through. A missing or non-string type cannot be judged."""
    if not binding.spec.participants:
        return True
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str):
        raise UndecidableError("a participant lacks its type")
    return kind not in binding.spec.non_contacts


def stub(obj: dict[str, Any]) -> dict[str, Any]:
    """The redacted contact: built from an allowlist, never by deleting known-sensitive keys."""
    out: dict[str, Any] = {"id": obj["id"]}
    if "name" in obj:
        out["name"] = MASK
    if "type" in obj:
        out["type"] = obj["type"]
    out["redacted"] = True
    return out


class ContactRedaction:
    targets: frozenset[str] | None = None
    keeps: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding[Participants], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return (("id", None), ("type", None)) if binding.spec.participants else (("id", None),)

    def judge(self, binding: Binding[Participants], viewer: Viewer) -> Judge:
        shown = _visible_set(viewer)
        if not binding.spec.participants:
            return lambda obj: object_id(obj) not in shown

        def hidden(obj: Any) -> bool | None:
            if not is_contact(obj, binding):
                return None
            return object_id(obj) not in shown

        return hidden

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        return stub(obj)

    def native(self, binding: Binding[Participants], viewer: Viewer) -> Native | None:
        """judge and redact as the compiled scanner's table (proxy.native): a stub where hidden."""
        if viewer.visible_contacts is None:
            return None  # unresolved: the pure path refuses
        spec = binding.spec
        return "contact", (spec.participants, spec.non_contacts, viewer.visible_contacts)


class ContactFilter:
    """Lists of contacts hold only visible ones; apply drops the record instead of redacting it."""

    targets: frozenset[str] | None = None
    keeps: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding[None], settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return (("id", None),)

    def judge(self, binding: Binding[None], viewer: Viewer) -> Judge:
        shown = _visible_set(viewer)
        return lambda obj: object_id(obj) not in shown

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("filtered records are dropped, not redacted")

    def native(self, binding: Binding[None], viewer: Viewer) -> Native | None:
        return ("filter", (viewer.visible_contacts,)) if viewer.visible_contacts is not None else None


def refuse_hidden_references(data: Any, binding: Binding[Reference], viewer: Viewer) -> None:
    """A write naming a contact the caller may not see is refused with the seed's status.

    Also a write that would make a hidden contact visible (a relationship, a matter's client, a bill
    payer): naming it is the same escalation. `name: {id}` and its `name_id` spelling are one reference.
    """
    for contact_id in named_contacts(data, binding):
        if not visible(contact_id, viewer):
            raise refusal(binding, binding.spec.status, f"`{_where(binding)}` names a contact you cannot see")


def named_contacts(data: Any, binding: Binding[Reference]) -> list[int]:
    """The contact ids a write body names at the binding's place; a malformed reference is a 400."""
    key, is_list = _last_step(binding)
    out: list[int] = []
    for container in _containers(data, binding):
        value = container.get(key)
        refs: list[Any] = []
        if is_list and value is not None:
            if not isinstance(value, list):
                raise BadRequestError(f"`{_where(binding)}` must be a list")
            refs = [item for item in value if item is not None]
        elif value is not None:
            refs = [value]
        for ref in refs:
            if not isinstance(ref, dict):
                raise BadRequestError(f"`{_where(binding)}` must be an object")
            if (named := _named(ref, binding)) is not None:
                out.append(named)
        if not is_list and container.get(f"{key}_id") is not None:
            # `client_id: 950` is read by the backend as `client: {id: 950}`. It carries no type, so in
            # a participant list it is a contact: unknown means contact.
            out.append(reference_id(container[f"{key}_id"]))
    return out


def _named(ref: dict[str, Any], binding: Binding[Reference]) -> int | None:
    if binding.spec.participants:
        kind = ref.get("type")
        if not isinstance(kind, str):
            raise BadRequestError(f"`{_where(binding)}` entries need a type")
        if kind in binding.spec.non_contacts:
            return None
        # Any other spelling (`contact`, `person`, `User `, ``, `Individual`) is a contact: a lenient
        # backend treats everything but its non-contact types as one.
    if ref.get("id") is None:
        return None  # a new attendee, or clearing the reference: names no contact
    return reference_id(ref["id"])


def refuse_hidden_values(data: Any, binding: Binding[Refuse], viewer: Viewer) -> None:
    """A custom field value that reads as the id of a hidden contact is refused with the seed's status.

    A matter's `custom_field_values[]` write carries `value` and `custom_field: {id}`; whether that
    field is contact-typed is not in the body. Fail closed without a lookup: any value the backend
    could read as a contact id (an integer, or a string its integer cast reads as one) that names a
    hidden contact is refused, even if the field turns out to be numeric.
    """
    key, _ = _last_step(binding)
    for container in _containers(data, binding):
        value = container.get(key)
        # a list is read item by item: a lenient backend may take any of them
        for item in value if isinstance(value, list) else [value]:
            contact_id = loose_id(item)
            if contact_id is not None and not visible(contact_id, viewer):
                raise refusal(binding, binding.spec.status, f"`{_where(binding)}` names a contact you cannot see")


_LOOSE_ID = re.compile(r"\s*\+?(\d+(?:_\d+)*)")


def loose_id(value: Any) -> int | None:
    """The id a lenient backend's integer cast would read from a value, or None (Ruby's `to_i` reads
    `" 0950abc"` as 950 and `"9_50"` as 950; `{"id": 950}` is the reference form)."""
    if isinstance(value, dict):
        return loose_id(value.get("id"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < MAX_ID else None
    if isinstance(value, Decimal):
        # compared before int(): int(Decimal("1e999999999")) would build a billion-digit number
        return int(value) if value.is_finite() and 1 <= value < MAX_ID else None
    if isinstance(value, str) and (m := _LOOSE_ID.match(value)):
        digits = m.group(1).replace("_", "").lstrip("0")
        # more than 19 digits is past any int64 id (and int() of a huge string raises)
        return int(digits) if 0 < len(digits) <= 19 and int(digits) < MAX_ID else None
    return None


def _last_step(binding: Binding[Any]) -> tuple[str, bool]:
    assert binding.at is not None and binding.at.steps
    return binding.at.steps[-1]


def _containers(data: Any, binding: Binding[Any]) -> list[dict[str, Any]]:
    """The objects that hold the reference: the body itself, or the items of `relationships[]`."""
    assert binding.at is not None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be {\"data\": {...}}")
    parents = Location(binding.at.steps[:-1], binding.at.text)
    try:
        found = [obj for _, _, _, obj in parents.find(data)]
    except TypeError:
        raise BadRequestError(f"`{_where(binding)}` has the wrong shape") from None
    for obj in found:
        if not isinstance(obj, dict):
            # `relationships: [950]` is not skipped: the backend might read it as a reference.
            raise BadRequestError(f"`{_where(binding)}` has the wrong shape")
    return found


def _where(binding: Binding[Any]) -> str:
    assert binding.at is not None
    return binding.at.text


def reference_id(value: Any) -> int:
    """An id as the backend would read it: an integer or a canonical digit string; else 400."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_ID:
        return value
    if (isinstance(value, str) and value.isascii() and value.isdigit() and not value.startswith("0")
            and len(value) <= 19 and int(value) < MAX_ID):
        return int(value)
    raise BadRequestError("an id must be a positive integer")


def _hide_contact(binding: Binding[Hide], params: dict[str, int], data: Any,
                  viewer: Viewer) -> tuple[ProxyError, int | None] | None:
    contact_id = params[binding.spec.param]
    if restricted(viewer.settings) and not visible(contact_id, viewer):
        return NotFoundError(f"{binding.rule}: no such contact", rule=binding.rule), contact_id
    return None


def _refuse_reference(binding: Binding[Reference], params: dict[str, int], data: Any,
                      viewer: Viewer) -> tuple[ProxyError, int | None] | None:
    if restricted(viewer.settings) and data is not None:
        refuse_hidden_references(body_data(data), binding, viewer)
    return None


def _refuse_value(binding: Binding[Refuse], params: dict[str, int], data: Any,
                  viewer: Viewer) -> tuple[ProxyError, int | None] | None:
    if restricted(viewer.settings) and data is not None:
        refuse_hidden_values(body_data(data), binding, viewer)
    return None


def _refuse_value_spec(reader: SpecReader) -> Refuse:
    return Refuse(read_status(reader))


VISIBLE_BY_DEFINITION = frozenset({("matters", "client"), ("matters", "custom_field_values[].contact")})
"""(family, location) of contacts that 4.0.9 makes visible to whoever sees the record: a matter's client and
its contact custom fields belong to a matter the caller can see. Ordering matters by their client's name, or
the matters `query` search (which also matches the client's name), ranks and selects only visible names, so
both stay allowed; the bindings still stub such a contact should the backend ever disagree."""


def _stub_hides(binding: Binding[Participants], family: str) -> Hiding | None:
    if binding.at is not None and (family, binding.at.text) in VISIBLE_BY_DEFINITION:
        return None
    return Hiding(None)  # all but what the stub keeps


RULE = RuleDef(
    "contacts_visibility",
    SETTING,
    (
        ActionDef("filter_contacts", spec=no_spec, respond=ContactFilter(), order=0, filters=True,
                  # FILTER drops hidden records: what is left may be ordered and filtered freely.
                  covers=frozenset({"contact", "participant"}),
                  whole_index="/contacts", visible=_visible_set),
        ActionDef("redact_contact", frozenset({"participants"}), read_participants, respond=ContactRedaction(),
                  order=1, hides=_stub_hides, covers=frozenset({"contact", "participant"})),
        ActionDef("hide_contact", frozenset({"param"}), _hide_spec, check=_hide_contact,
                  covers=frozenset({"contact", "participant"}), covers_by_id=True),
        ActionDef("refuse_contact_reference", frozenset({"status", "participants"}), _reference_spec,
                  check=_refuse_reference, needs_at=True),
        ActionDef("refuse_contact_value", frozenset({"status"}), _refuse_value_spec, check=_refuse_value,
                  needs_at=True),
    ),
    restricted,
    facts=("visible_contacts",),
)
"""Contacts visibility (4.0.9), everything the proxy knows about it."""
