"""The resource table: each API resource's actions, index filters, blank record and writable references,
and the legacy matter-access check every record goes through."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .activities import blank_activity
from .files import blank_conversation_message, blank_document
from .injury import blank_damage, blank_medical_records_detail
from .matters import blank_matter, blank_relationship
from .model import Record
from .people import blank_contact
from .work import blank_calendar_entry, blank_communication, blank_note, blank_task

ALL = frozenset({"index", "show", "create", "update", "delete"})
READ = frozenset({"index", "show"})
Blank = Callable[[int, str], Record]


@dataclass(frozen=True)
class Resource:
    name: str
    actions: frozenset[str]
    blank: Blank | None = None
    filters: frozenset[str] = frozenset({"matter_id", "type"})
    # body field -> how to resolve it (see writes.py); other known scalar fields are copied as they are
    writes: Mapping[str, str] = field(default_factory=dict)
    path: str = ""  # the API path when it is not the name (`clio_payments/links`)


def _folder(folder_id: int, when: str) -> Record:
    return blank_document(folder_id, when, "Folder")


def _resources() -> Mapping[str, Resource]:
    on_matter = {"matter": "matter"}
    table = (
        Resource("users", READ, filters=frozenset()),
        Resource("contacts", ALL, blank_contact, frozenset({"type", "creator_id"}), {
            "company": "contact", "email_addresses": "sublist", "phone_numbers": "sublist", "addresses": "sublist",
            "web_sites": "sublist", "custom_field_values": "custom_fields"}),
        Resource("matters", ALL, blank_matter, frozenset({"client_id", "responsible_attorney_id", "status"}), {
            "client": "contact", "responsible_attorney": "attorney", "originating_attorney": "attorney",
            "responsible_staff": "attorney", "custom_field_values": "custom_fields", "relationships": "deferred"}),
        Resource("relationships", ALL, blank_relationship, frozenset({"matter_id", "contact_id"}),
                 {**on_matter, "contact": "contact"}),
        Resource("activities", ALL, blank_activity, frozenset({"matter_id", "user_id", "type"}),
                 {**on_matter, "user": "user", "user_id": "user_id", "vendor": "contact"}),
        Resource("calendar_entries", ALL, blank_calendar_entry, writes={
            **on_matter, "attendees": "attendees", "calendar_owner": "calendar_owner"}),
        Resource("communications", ALL, blank_communication, frozenset({"matter_id", "type", "user_id"}), {
            **on_matter, "user": "user", "senders": "participants", "receivers": "participants"}),
        Resource("tasks", ALL, blank_task, writes={**on_matter, "assignee": "participant", "assigner": "user"}),
        Resource("notes", ALL, blank_note, frozenset({"matter_id", "contact_id", "type"}),
                 {**on_matter, "contact": "contact", "author": "user"}),
        Resource("bills", frozenset({"index", "show", "update", "delete"}), filters=frozenset({
            "matter_id", "client_id", "state"})),
        Resource("documents", ALL, blank_document, frozenset({"matter_id", "contact_id"}),
                 {**on_matter, "contact": "contact", "parent": "folder"}),
        Resource("folders", ALL, _folder, frozenset({"matter_id", "contact_id"}),
                 {**on_matter, "contact": "contact", "parent": "folder"}),
        Resource("conversations", frozenset({"index", "show", "update"})),
        Resource("conversation_messages", frozenset({"index", "show", "create"}), blank_conversation_message,
                 frozenset({"matter_id", "conversation_id"}),
                 {"conversation": "conversation", "sender": "participant", "receivers": "participants"}),
        Resource("allocations", READ, filters=frozenset({"matter_id", "contact_id"})),
        Resource("bank_transactions", READ, filters=frozenset({"matter_id", "client_id", "type"})),
        Resource("bank_transfers", frozenset({"show"})),
        Resource("credit_memos", READ, filters=frozenset({"contact_id"})),
        Resource("outstanding_client_balances", frozenset({"index"}), filters=frozenset({"contact_id"})),
        Resource("billable_matters", frozenset({"index"}), filters=frozenset({"matter_id", "client_id"})),
        Resource("trust_line_items", frozenset({"index", "update"}), filters=frozenset({"matter_id", "client_id"})),
        Resource("medical_records_details", ALL, blank_medical_records_detail, frozenset({"matter_id"}), {
            **on_matter, "medical_provider": "contact", "medical_records": "medical_records",
            "medical_bills": "medical_bills"}),
        Resource("medical_records", frozenset({"update", "delete"})),
        Resource("medical_bills", frozenset({"update", "delete"})),
        Resource("damages", ALL, blank_damage, frozenset({"matter_id"}), on_matter),
        Resource("clio_payments_links", READ, filters=frozenset(), path="clio_payments/links"),
        Resource("clio_payments_payments", READ, filters=frozenset({"matter_id"}), path="clio_payments/payments"),
        Resource("reminders", READ, filters=frozenset()),
        Resource("log_entries", frozenset({"index"}), filters=frozenset()),
    )
    return MappingProxyType({r.name: r for r in table})


RESOURCES: Mapping[str, Resource] = _resources()


def _ref_ids(record: Record, key: str) -> list[Any]:
    value = record.get(key)
    return [value["id"]] if isinstance(value, dict) else []


def matter_ids(resource: str, record: Record) -> list[int]:
    """The matters a record belongs to (empty: it belongs to none and everyone may see it)."""
    if resource in ("matters", "billable_matters"):
        return [record["id"]]
    if "associated_matter_ids" in record:
        return list(record["associated_matter_ids"])
    if isinstance(record.get("matters"), list):
        return [m["id"] for m in record["matters"]]
    return _ref_ids(record, "matter")


def filter_values(resource: str, name: str, record: Record) -> list[Any]:
    if name == "matter_id":
        return list(matter_ids(resource, record))
    if name in ("type", "status", "state"):
        return [record.get(name)] if record.get(name) is not None else []
    return _ref_ids(record, name.removesuffix("_id"))


def is_visible(resource: str, record: Record, accessible: frozenset[int] | None) -> bool:
    """Legacy matter access: records of no matter are visible to all; `accessible` None means all."""
    if accessible is None:
        return True
    ids = matter_ids(resource, record)
    return not ids or any(mid in accessible for mid in ids)
