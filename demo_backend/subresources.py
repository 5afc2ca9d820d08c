"""Nested endpoints: `users/who_am_i`, a contact's email addresses and phone numbers, and a matter's
client, contacts and related contacts (full contact records, no contact visibility: legacy)."""

from __future__ import annotations

from aiohttp import web

from .errors import not_found
from .handlers import Call, index_response, show_record, visible_record
from .model import Record


async def who_am_i(call: Call) -> web.StreamResponse:
    return show_record(call, call.caller)


def _contact(call: Call) -> Record:
    record = call.firm.contacts.get(call.record_id or -1)
    if record is None:
        raise not_found(f"No contacts record with id {call.record_id}")
    return record


async def contact_email_addresses(call: Call) -> web.StreamResponse:
    return index_response(call, ((item["id"], item) for item in _contact(call)["email_addresses"]))


async def contact_phone_numbers(call: Call) -> web.StreamResponse:
    return index_response(call, ((item["id"], item) for item in _contact(call)["phone_numbers"]))


def _related_ids(call: Call, matter: Record) -> list[int]:
    return [
        r["contact"]["id"] for r in call.firm.relationships.values()
        if r["matter"] is not None and r["matter"]["id"] == matter["id"] and r["contact"] is not None
    ]


def _contacts_by_id(call: Call, ids: list[int]) -> list[tuple[int, Record]]:
    contacts = call.firm.contacts
    return sorted({cid: contacts[cid] for cid in ids if cid in contacts}.items())


async def matter_client(call: Call) -> web.StreamResponse:
    matter = visible_record(call)
    client = call.firm.contacts.get(matter["client"]["id"]) if matter["client"] else None
    if client is None:
        raise not_found("The matter has no client")
    return show_record(call, client)


async def matter_contacts(call: Call) -> web.StreamResponse:
    """The client, relationship contacts and contact custom field contacts of the matter."""
    matter = visible_record(call)
    ids = [matter["client"]["id"]] if matter["client"] else []
    ids += _related_ids(call, matter)
    ids += [v["contact"]["id"] for v in matter["custom_field_values"] if v.get("contact")]
    return index_response(call, _contacts_by_id(call, ids))


async def matter_related_contacts(call: Call) -> web.StreamResponse:
    matter = visible_record(call)
    return index_response(call, _contacts_by_id(call, _related_ids(call, matter)))
