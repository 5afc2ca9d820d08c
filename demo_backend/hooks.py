"""What a write changes beyond the record's own fields: derived values, defaults from the caller,
and the records that nest or count it (a matter's relationships, time entries, message counts)."""

from __future__ import annotations

from .activities import derive_amounts
from .errors import unprocessable
from .matters import blank_relationship, display_number, sync_matter_relationships
from .model import Record
from .shapes import (
    calendar_owner,
    contact_ref,
    initials_of,
    matter_ref,
    now_stamp,
    refresh_etag,
    today,
    user_participant,
    user_ref,
)
from .write_lists import contact_record, items_of, ref_id
from .writes import WriteContext

ACTIVITY_TYPES = ("TimeEntry", "ExpenseEntry", "HardCostEntry", "SoftCostEntry")
NESTING = ("calendar_entries", "communications", "tasks", "notes")


def after_write(ctx: WriteContext, resource: str, record: Record, creating: bool, before: Record) -> None:
    """Run after apply_write and before the etag is refreshed; `before` is a shallow copy of the old record."""
    firm, caller = ctx.firm, ctx.caller
    if resource == "activities":
        if record["type"] not in ACTIVITY_TYPES:
            raise unprocessable(f"type must be one of {', '.join(ACTIVITY_TYPES)}")
        if creating and record["user"] is None:
            record["user"] = user_ref(caller)
        if creating and not record["price"] and record["type"] == "TimeEntry":
            record["price"] = firm.users[record["user"]["id"]]["rate"]
        try:
            derive_amounts(record)
        except (TypeError, ValueError):
            raise unprocessable("quantity and price must be numbers") from None
    elif resource == "contacts":
        _contact(ctx, record, creating, before)
    elif resource == "matters":
        _matter(ctx, record, creating)
    elif resource == "relationships":
        for ref in (before.get("matter"), record["matter"]):
            if isinstance(ref, dict):
                ctx.deferred.setdefault("sync_matters", set()).add(ref["id"])
    elif resource == "calendar_entries":
        if record["calendar_owner"] is None:
            record["calendar_owner"] = calendar_owner(caller)
        record["calendar_owner_id"] = record["calendar_owner"]["id"]
    elif resource == "communications" and record["user"] is None:
        record["user"] = user_ref(caller)
    elif resource == "tasks" and record["assigner"] is None:
        record["assigner"] = user_ref(caller)
    elif resource == "notes":
        if record["author"] is None:
            record["author"] = user_ref(caller)
        if creating and record["contact"] is not None and record["matter"] is None:
            record["type"] = "Contact"
    elif resource == "conversation_messages" and creating:
        if record["conversation"] is None:
            raise unprocessable("conversation is required")
        conversation = firm.conversations[record["conversation"]["id"]]
        record["matter"] = conversation["matter"]
        record["sender"] = record["sender"] or user_participant(caller)
        record["date"] = today()
        conversation["message_count"] += 1
        conversation["updated_at"] = now_stamp()
        refresh_etag(conversation)


def after_store(ctx: WriteContext, resource: str, record: Record) -> None:
    """Run once the record is stored with its final etag: update the records that nest it."""
    firm = ctx.firm
    if resource == "matters" and "relationships" in ctx.deferred:
        for item in items_of(ctx.deferred["relationships"], "relationships"):
            contact = contact_record(firm, ref_id(item.get("contact"), "contact"))
            relationship = blank_relationship(firm.allocate_id("relationships"), now_stamp())
            relationship.update(description=item.get("description"), matter=matter_ref(record),
                                contact=contact_ref(contact))
            refresh_etag(relationship)
            firm.relationships[relationship["id"]] = relationship
        ctx.deferred.setdefault("sync_matters", set()).add(record["id"])
    for matter_id in sorted(ctx.deferred.get("sync_matters", ())):
        sync_matter_relationships(firm, matter_id)
        if matter_id in firm.matters:
            refresh_etag(firm.matters[matter_id])
    if resource == "activities":
        for parent in _nesting(ctx, record["id"]):
            refresh_etag(parent)


def after_delete(ctx: WriteContext, resource: str, record: Record) -> None:
    firm = ctx.firm
    if resource == "relationships" and record["matter"] is not None:
        ctx.deferred["sync_matters"] = {record["matter"]["id"]}
        after_store(ctx, resource, record)
    elif resource == "activities":
        for parent in _nesting(ctx, record["id"]):
            parent["time_entries"] = [a for a in parent["time_entries"] if a["id"] != record["id"]]
            parent["time_entries_count"] = len(parent["time_entries"])
            refresh_etag(parent)
    elif resource == "medical_records_details":
        for item in record["medical_records"]:
            firm.medical_records.pop(item["id"], None)
        for item in record["medical_bills"]:
            firm.medical_bills.pop(item["id"], None)
    elif resource == "matters":
        firm.matter_members.pop(record["id"], None)


def _nesting(ctx: WriteContext, activity_id: int) -> list[Record]:
    found: list[Record] = []
    for name in NESTING:
        for parent in ctx.firm.store(name).values():
            if any(a["id"] == activity_id for a in parent["time_entries"]):
                found.append(parent)
    return found


def _contact(ctx: WriteContext, contact: Record, creating: bool, before: Record) -> None:
    if contact["type"] not in ("Person", "Company"):
        raise unprocessable("type must be Person or Company")
    parts_changed = any(contact[k] != before.get(k) for k in ("first_name", "middle_name", "last_name"))
    if contact["type"] == "Person" and (parts_changed or not contact["name"]) and (
            contact["first_name"] or contact["last_name"]):
        parts = (contact["first_name"], contact["middle_name"], contact["last_name"])
        contact["name"] = " ".join(p for p in parts if p)
    if not contact["name"]:
        raise unprocessable("A contact needs a name (or first_name/last_name)")
    contact["initials"] = initials_of(contact["name"])
    for key, field, attr in (("email_addresses", "primary_email_address", "address"),
                             ("phone_numbers", "primary_phone_number", "number")):
        primary = next((i for i in contact[key] if i.get("primary")), contact[key][0] if contact[key] else None)
        contact[field] = None if primary is None else primary[attr]
    if creating:
        contact["creator"] = user_ref(ctx.caller)


def _matter(ctx: WriteContext, matter: Record, creating: bool) -> None:
    firm = ctx.firm
    if not creating:
        return
    matter["number"] = max((m["number"] for m in firm.matters.values()), default=0) + 1
    if not matter["display_number"]:
        client = firm.contacts.get(matter["client"]["id"]) if matter["client"] else None
        matter["display_number"] = display_number(matter["number"], client)
    matter["open_date"] = matter["open_date"] or today()
    # The creator keeps access to the matter they made (legacy matter permissions).
    firm.matter_members[matter["id"]] = {ctx.caller["id"]}

