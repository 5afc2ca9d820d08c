"""Contacts visibility (4.0.9): hidden contacts become stubs, lists are filtered, writes are refused.

Seed rows: every row of the 4.0.9 table. A restricted caller sees a contact when they created it or
it belongs to a matter they can see (client, related contact, contact custom field, co-counsel).
"""

from __future__ import annotations

from typing import Any

from ..errors import BLOCK_ERRORS, BadRequestError, UndecidableError
from ..facts.settings import ContactsVisibility, UserSettings
from ..facts.viewer import Viewer
from ..policy.model import Binding, Rule
from .base import Judge, object_id

CONTACT_TYPES = frozenset({"Person", "Company", "Contact"})
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
    """Only entries typed as contacts are contacts in participant lists (users, calendars are not)."""
    if not binding.participants:
        return True
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str):
        raise UndecidableError("a participant lacks its type")
    return kind in CONTACT_TYPES


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
    """A write naming a contact the caller may not see is refused with the seed's status."""
    assert binding.at is not None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be {\"data\": {...}}")
    try:
        found = list(binding.at.find(data))
    except TypeError:
        raise BadRequestError(f"`{binding.at.text}` has the wrong shape") from None
    for _, _, _, ref in found:
        if not isinstance(ref, dict):
            raise BadRequestError(f"`{binding.at.text}` must be an object")
        if binding.participants:
            kind = ref.get("type")
            if not isinstance(kind, str):
                raise BadRequestError(f"`{binding.at.text}` entries need a type")
            if kind not in CONTACT_TYPES:
                continue
        if ref.get("id") is None:
            continue  # a new attendee, or clearing the reference: names no contact
        if not visible(reference_id(ref["id"]), viewer):
            raise BLOCK_ERRORS[binding.status](
                f"{binding.rule}: `{binding.at.text}` names a contact you cannot see", rule=binding.rule
            )


def reference_id(value: Any) -> int:
    """An id as the backend would read it: an integer or a canonical digit string; else 400."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and not value.startswith("0"):
        return int(value)
    raise BadRequestError("an id must be a positive integer")
