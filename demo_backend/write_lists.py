"""Resolving the list-valued and participant fields of write bodies into stored shapes.

Participant lists (senders, receivers, attendees) are replaced by the list sent, minus items flagged
`_destroy`/`_deleted`; id-carrying lists (email addresses, custom field values, medical records) are merged.
Contact visibility is deliberately not checked: this is the legacy backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .catalog import CUSTOM_FIELDS, custom_field_value
from .errors import unprocessable
from .injury import blank_medical_bill, blank_medical_record
from .model import Firm, Record
from .shapes import calendar_attendee, contact_attendee, contact_participant, now_stamp, refresh_etag, user_participant

SUBLIST_FIELDS = {
    "email_addresses": ("address", "name", "primary"),
    "phone_numbers": ("number", "name", "primary"),
    "addresses": ("street", "city", "province", "postal_code", "country", "name", "primary"),
    "web_sites": ("address", "name"),
}


def ref_id(value: Any, what: str) -> int:
    """The integer id of a `{"id": N}` reference in a write body."""
    if isinstance(value, dict) and isinstance(value.get("id"), (int, str)) and str(value["id"]).isdigit():
        return int(value["id"])
    raise unprocessable(f"{what} must be an object with an integer id")


def items_of(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise unprocessable(f"{what} must be a list of objects")
    return value


def _removed(item: dict[str, Any]) -> bool:
    return bool(item.get("_destroy") or item.get("_deleted"))


def contact_record(firm: Firm, contact_id: int) -> Record:
    contact = firm.contacts.get(contact_id)
    if contact is None:
        raise unprocessable(f"Contact {contact_id} does not exist")
    return contact


def user_record(firm: Firm, user_id: int) -> Record:
    user = firm.users.get(user_id)
    if user is None:
        raise unprocessable(f"User {user_id} does not exist")
    return user


def participant(firm: Firm, item: Any, what: str) -> Record:
    pid = ref_id(item, what)
    kind = item.get("type")
    if kind == "User":
        return user_participant(user_record(firm, pid))
    if kind in ("Contact", "Person", "Company"):
        return contact_participant(contact_record(firm, pid))
    raise unprocessable(f"{what} type must be User or Contact")


def participants(firm: Firm, value: Any, what: str) -> list[Record]:
    return [participant(firm, item, what) for item in items_of(value, what) if not _removed(item)]


def attendees(firm: Firm, value: Any) -> list[Record]:
    out: list[Record] = []
    for item in items_of(value, "attendees"):
        if _removed(item):
            continue
        aid, kind = ref_id(item, "attendee"), item.get("type")
        if kind == "Contact":
            out.append(contact_attendee(contact_record(firm, aid)))
        elif kind == "Calendar":
            out.append(calendar_attendee(user_record(firm, aid - 5000)))
        elif kind == "User":
            out.append(calendar_attendee(user_record(firm, aid)))
        else:
            raise unprocessable("attendee type must be Calendar or Contact")
    return out


def _merge(current: list[Record], incoming: list[dict[str, Any]], what: str,
           update: Callable[[Record, dict[str, Any]], None], create: Callable[[dict[str, Any]], Record | None],
           on_remove: Callable[[Record], object] = lambda _: None) -> list[Record]:
    """Update items named by id, drop the ones flagged for removal, append the new ones."""
    result = list(current)
    for item in incoming:
        if "id" in item and item["id"] is not None:
            match = next((r for r in result if str(r["id"]) == str(item["id"])), None)
            if match is None:
                raise unprocessable(f"{what} {item['id']} does not exist")
            if _removed(item):
                result.remove(match)
                on_remove(match)
            else:
                update(match, item)
        elif not _removed(item):
            created = create(item)
            if created is not None:
                result.append(created)
    return result


def sublist(firm: Firm, key: str, current: list[Record], value: Any) -> list[Record]:
    allowed = SUBLIST_FIELDS[key]

    def update(record: Record, item: dict[str, Any]) -> None:
        record.update({k: v for k, v in item.items() if k in allowed})
        record["updated_at"] = now_stamp()
        refresh_etag(record)

    def create(item: dict[str, Any]) -> Record:
        when = now_stamp()
        record: Record = {"id": firm.allocate_id(key), "etag": ""}
        record.update({k: item.get(k, False if k == "primary" else None) for k in allowed})
        record.update(created_at=when, updated_at=when)
        refresh_etag(record)
        return record

    return _merge(current, items_of(value, key), key, update, create)


def custom_fields(firm: Firm, current: list[Record], value: Any) -> list[Record]:
    result = list(current)
    for item in items_of(value, "custom_field_values"):
        cf = CUSTOM_FIELDS.get(ref_id(item.get("custom_field"), "custom_field"))
        if cf is None:
            raise unprocessable("unknown custom_field")
        raw = item.get("value")
        if cf.field_type == "contact" and raw is not None:
            contact_record(firm, int(raw) if str(raw).isdigit() else -1)
        existing = next((r for r in result if r["custom_field"]["id"] == cf.id), None)
        fresh = custom_field_value(firm, cf, raw)
        if existing is not None:
            index = result.index(existing)
            if _removed(item):
                del result[index]
            else:
                fresh["id"] = existing["id"]
                result[index] = fresh
        elif not _removed(item):
            result.append(fresh)
    return result


def medical_items(firm: Firm, key: str, current: list[Record], value: Any) -> list[Record]:
    """Nested medical records/bills of a medical records detail; their own stores follow along."""
    store = firm.store(key)
    blank = blank_medical_record if key == "medical_records" else blank_medical_bill

    def update(record: Record, item: dict[str, Any]) -> None:
        apply_scalars(record, item)
        refresh_etag(record)

    def create(item: dict[str, Any]) -> Record:
        record = blank(firm.allocate_id(key), now_stamp())
        apply_scalars(record, item)
        refresh_etag(record)
        store[record["id"]] = record
        return record

    return _merge(current, items_of(value, key), key, update, create, lambda r: store.pop(r["id"], None))


READ_ONLY = frozenset({
    "id", "etag", "created_at", "updated_at", "rounded_quantity", "quantity_in_hours", "rounded_quantity_in_hours",
    "total", "non_billable_total", "quantity_redacted", "time_entries_count", "message_count", "calendar_owner_id",
})
SCALARS = (str, int, float, bool, type(None))


def apply_scalars(record: Record, data: dict[str, Any]) -> None:
    """Copy plain values onto the record's existing plain fields; anything else is silently ignored."""
    for key, value in data.items():
        if key in READ_ONLY or key not in record or isinstance(record[key], (dict, list)):
            continue
        if isinstance(value, SCALARS):
            record[key] = value
    record["updated_at"] = now_stamp()
