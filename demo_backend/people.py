"""Users and contacts of the generated firm, and the blank contact a POST starts from."""

from __future__ import annotations

import random

from .catalog import CUSTOM_FIELDS, custom_field_value
from .model import Firm, Record
from .naming import CITIES, STREETS, NameMaker
from .shapes import contact_ref, day, initials_of, stamp, sub_record, user_ref

FIXED_USERS = (
    (1, "Ada", "Admin", ("Administrator",), "Attorney"),
    (2, "Rita", "Restricted", ("Attorney",), "Attorney"),
    (3, "Sam", "Staff", ("Paralegal",), "NonAttorney"),
)
OTHER_ROLES = ((("Attorney",), "Attorney"), (("Attorney",), "Attorney"), (("Paralegal",), "NonAttorney"),
               (("Billing",), "NonAttorney"))
USERS_PER_SCALE = 8
CONTACTS_PER_SCALE = 150


def blank_contact(contact_id: int, when: str) -> Record:
    """Every Contact field in schema order, empty."""
    return {
        "id": contact_id, "etag": "", "type": "Person", "name": "", "first_name": None, "middle_name": None,
        "last_name": None, "prefix": None, "title": None, "initials": None, "date_of_birth": None,
        "primary_email_address": None, "primary_phone_number": None, "is_client": False, "is_co_counsel": False,
        "is_bill_recipient": False, "created_at": when, "updated_at": when, "company": None,
        "email_addresses": [], "phone_numbers": [], "addresses": [], "web_sites": [], "related_contacts": [],
        "custom_field_values": [], "creator": None,
    }


def email_of(first: str, last: str, domain: str) -> str:
    parts = ("".join(ch for ch in part.lower() if ch.isalnum()) for part in (first, last))
    return ".".join(p for p in parts if p) + "@" + domain


def generate_users(firm: Firm, rng: random.Random, names: NameMaker) -> None:
    count = USERS_PER_SCALE * firm.scale
    for uid in range(1, count + 1):
        if uid <= len(FIXED_USERS):
            _, first, last, roles, subscription = FIXED_USERS[uid - 1]
            names.reserve(f"{first} {last}")
        else:
            first, _, last, _ = names.person()
            roles, subscription = OTHER_ROLES[uid % len(OTHER_ROLES)]
        attorney = subscription == "Attorney"
        name = f"{first} {last}"
        minutes = rng.randrange(0, 60 * 24 * 30)
        firm.users[uid] = {
            "id": uid, "etag": "", "name": name, "first_name": first, "last_name": last,
            "initials": initials_of(name), "email": email_of(first, last, "firm.example"), "enabled": True,
            "roles": list(roles), "rate": float(rng.randrange(250, 575, 25) if attorney else rng.randrange(95, 155, 5)),
            "subscription_type": subscription, "time_zone": "Pacific Time (US & Canada)",
            "phone_number": f"(555) 100-{uid:04d}", "created_at": stamp(minutes), "updated_at": stamp(minutes),
            "contact": None,
        }


def _add_channels(firm: Firm, contact: Record, rng: random.Random, domain: str) -> None:
    minutes = rng.randrange(0, 60 * 24 * 400)
    first = contact["first_name"] or contact["name"].split()[0]
    last = contact["last_name"] or "info"
    emails = [email_of(first, last, domain)]
    if contact["type"] == "Person" and rng.random() < 0.4:
        emails.append(email_of(first[0], last, "mail.example"))
    for i, address in enumerate(emails):
        contact["email_addresses"].append(sub_record(
            firm.allocate_id("email_addresses"), minutes, address=address, name="Work" if i else "Home",
            primary=i == 0))
    number = f"(555) {rng.randrange(200, 999)}-{rng.randrange(0, 10000):04d}"
    contact["phone_numbers"].append(sub_record(
        firm.allocate_id("phone_numbers"), minutes, number=number, name="Work", primary=True))
    if rng.random() < 0.6:
        contact["addresses"].append(sub_record(
            firm.allocate_id("addresses"), minutes, street=f"{rng.randrange(10, 9999)} {rng.choice(STREETS)}",
            city=rng.choice(CITIES[:9]), province="CA", postal_code=f"9{rng.randrange(0, 10000):04d}",
            country="United States", name="Home", primary=True))
    if contact["type"] == "Company":
        contact["web_sites"].append(sub_record(
            firm.allocate_id("web_sites"), minutes, address=f"https://{domain}", name="Work"))
    contact["primary_email_address"] = emails[0]
    contact["primary_phone_number"] = number


def _make_person(firm: Firm, cid: int, first: str, middle: str | None, last: str, full: str, when: str) -> Record:
    contact = blank_contact(cid, when)
    contact.update(type="Person", name=full, first_name=first, middle_name=middle, last_name=last,
                   initials=initials_of(full))
    return contact


def generate_contacts(firm: Firm, rng: random.Random, names: NameMaker) -> None:
    users = list(firm.users.values())
    cid = firm.allocate_id("contacts")
    for user in users:  # each user's own contact card comes first
        when = user["created_at"]
        contact = _make_person(firm, cid, user["first_name"], None, user["last_name"], user["name"], when)
        contact["creator"] = user_ref(user)
        _add_channels(firm, contact, rng, "firm.example")
        contact["primary_email_address"] = user["email"]
        contact["email_addresses"][0]["address"] = user["email"]
        firm.contacts[cid] = contact
        user["contact"] = contact_ref(contact)
        cid = firm.allocate_id("contacts")
    total = CONTACTS_PER_SCALE * firm.scale
    companies: list[Record] = []
    while len(firm.contacts) < total:
        when = stamp(rng.randrange(0, 60 * 24 * 500))
        if rng.random() < 0.3:
            contact = blank_contact(cid, when)
            name = names.company()
            contact.update(type="Company", name=name, initials=initials_of(name))
            domain = "".join(ch for ch in name.lower() if ch.isalnum())[:18] + ".example"
            companies.append(contact)
        else:
            first, middle, last, full = names.person()
            contact = _make_person(firm, cid, first, middle, last, full, when)
            contact["prefix"] = rng.choice((None, "Mr.", "Ms.", "Dr."))
            contact["date_of_birth"] = day(-rng.randrange(20 * 365, 70 * 365))
            domain = "example.com"
        creator = users[1] if rng.random() < 0.12 else rng.choice(users)
        contact["creator"] = user_ref(creator)
        _add_channels(firm, contact, rng, domain)
        firm.contacts[cid] = contact
        cid = firm.allocate_id("contacts")
    firm.next_ids["contacts"] = cid
    _link_contacts(firm, rng, companies)


def _link_contacts(firm: Firm, rng: random.Random, companies: list[Record]) -> None:
    people = [c for c in firm.contacts.values() if c["type"] == "Person" and c["id"] > 10000 + len(firm.users)]
    for person in people:
        if companies and rng.random() < 0.4:
            person["company"] = contact_ref(rng.choice(companies))
        if rng.random() < 0.1:
            other = rng.choice(people)
            if other is not person:
                person["related_contacts"].append(contact_ref(other))
        if rng.random() < 0.25:
            person["custom_field_values"].append(
                custom_field_value(firm, CUSTOM_FIELDS[240011], day(rng.randrange(0, 700))))
        if rng.random() < 0.15:
            other = rng.choice(people)
            person["custom_field_values"].append(custom_field_value(firm, CUSTOM_FIELDS[240012], other["id"]))
