"""Contacts visibility (4.0.9): hidden contacts become stubs, lists are filtered, writes are refused.

Seed rows: every row of the 4.0.9 table. A restricted caller sees a contact when they created it or
it belongs to a matter they can see (client, related contact, contact custom field, co-counsel).
SPEC 2.1: a participant of a type the proxy does not know is a contact; a write that would make a
hidden contact visible (relationship, matter client, custom field value, bill payer) is refused.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ..errors import BLOCK_ERRORS, BadRequestError, UndecidableError
from ..facts.settings import ContactsVisibility, UserSettings
from ..facts.viewer import Viewer
from ..policy.model import Binding, Location, Rule
from .base import Judge, object_id

MAX_ID = 2**63
"""Ids are int64: a reference past that names nothing the backend stores, and is malformed."""
MASK = "****"
"""One fixed mask for every name: its length reveals nothing."""


def restricted(settings: UserSettings) -> bool:
    return settings.contacts_visibility is ContactsVisibility.RESTRICTED


def _visible_set(viewer: Viewer) -> frozenset[int]:
    if viewer.visible_contacts is None:
        raise UndecidableError("visible contacts were not resolved")
    return viewer.visible_contacts


def visible(contact_id: int, viewer: Viewer) -> bool:
    return contact_id in _visible_set(viewer)


def is_contact(obj: Any, binding: Binding) -> bool:
    """In a participant list only the exact non-contact types of that place (`User`; `Calendar` for
    attendees) are not contacts: `person`, `Contact `, `CONTACT` or a type never seen is judged as a
    contact, never waved through. A missing or non-string type cannot be judged."""
    if not binding.participants:
        return True
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str):
        raise UndecidableError("a participant lacks its type")
    return kind not in binding.non_contacts


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
    rule: Rule = Rule.CONTACTS_VISIBILITY
    targets: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding, settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return (("id", None), ("type", None)) if binding.participants else (("id", None),)

    def judge(self, binding: Binding, viewer: Viewer) -> Judge:
        shown = _visible_set(viewer)
        if not binding.participants:
            return lambda obj: object_id(obj) not in shown

        def hidden(obj: Any) -> bool | None:
            if not is_contact(obj, binding):
                return None
            return object_id(obj) not in shown

        return hidden

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        return stub(obj)


class ContactFilter:
    """Lists of contacts hold only visible ones; apply drops the record instead of redacting it."""

    rule: Rule = Rule.CONTACTS_VISIBILITY
    targets: frozenset[str] | None = None

    def active(self, settings: UserSettings) -> bool:
        return restricted(settings)

    def reads(self, binding: Binding, settings: UserSettings) -> tuple[tuple[str, str | None], ...]:
        return (("id", None),)

    def judge(self, binding: Binding, viewer: Viewer) -> Judge:
        shown = _visible_set(viewer)
        return lambda obj: object_id(obj) not in shown

    def redact(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("filtered records are dropped, not redacted")


def refuse_hidden_references(data: Any, binding: Binding, viewer: Viewer) -> None:
    """A write naming a contact the caller may not see is refused with the seed's status.

    Also a write that would make a hidden contact visible (a relationship, a matter's client, a bill
    payer): naming it is the same escalation. `name: {id}` and its `name_id` spelling are one reference.
    """
    for contact_id in named_contacts(data, binding):
        if not visible(contact_id, viewer):
            raise BLOCK_ERRORS[binding.status](
                f"{binding.rule}: `{_where(binding)}` names a contact you cannot see", rule=binding.rule
            )


def named_contacts(data: Any, binding: Binding) -> list[int]:
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


def _named(ref: dict[str, Any], binding: Binding) -> int | None:
    if binding.participants:
        kind = ref.get("type")
        if not isinstance(kind, str):
            raise BadRequestError(f"`{_where(binding)}` entries need a type")
        if kind in binding.non_contacts:
            return None
        # Any other spelling (`contact`, `person`, `User `, ``, `Individual`) is a contact: a lenient
        # backend treats everything but its non-contact types as one.
    if ref.get("id") is None:
        return None  # a new attendee, or clearing the reference: names no contact
    return reference_id(ref["id"])


def refuse_hidden_values(data: Any, binding: Binding, viewer: Viewer) -> None:
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
                raise BLOCK_ERRORS[binding.status](
                    f"{binding.rule}: `{_where(binding)}` names a contact you cannot see", rule=binding.rule
                )


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


def _last_step(binding: Binding) -> tuple[str, bool]:
    assert binding.at is not None and binding.at.steps
    return binding.at.steps[-1]


def _containers(data: Any, binding: Binding) -> list[dict[str, Any]]:
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


def _where(binding: Binding) -> str:
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
