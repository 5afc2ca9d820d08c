"""Records the public spec returns contacts in beyond the changelog's table (issue 10): Clio Payments links
and payments, matters' bill recipients, reminders and log entries, and the polymorphic `subject` of
activities and `parent` of allocations (a Contact among other types). Hidden contacts are reachable here.

Drawn from their own random stream, so the rest of the firm is the same as before they existed.
"""

from __future__ import annotations

import random

from .model import Firm, Record
from .shapes import compute_etag, contact_ref, matter_ref, money, stamp, user_ref

COUNTS = {"clio_payments_links": 12, "clio_payments_payments": 12, "reminders": 15, "log_entries": 25}


def polymorphic(record: Record, kind: str, identifier: str) -> Record:
    """A PolymorphicObject of the spec: `{id, type, identifier}`; `identifier` is a contact's name."""
    return {"id": record["id"], "type": kind, "identifier": identifier}


def generate_payments(firm: Firm) -> None:
    rng = random.Random(firm.seed * 7919 + 10)
    contacts = [c for c in firm.contacts.values() if c["id"] > 10000 + len(firm.users)]
    matters = list(firm.matters.values())
    users = list(firm.users.values())
    bills = list(firm.bills.values())

    def base(store: str) -> tuple[Record, int]:
        minutes = rng.randrange(0, 60 * 24 * 600)
        rec: Record = {"id": firm.allocate_id(store), "etag": "", "created_at": stamp(minutes),
                       "updated_at": stamp(minutes + rng.randrange(0, 60 * 24 * 30))}
        return rec, minutes

    def subject() -> Record:
        roll = rng.random()
        if roll < 0.5:
            contact = rng.choice(contacts)
            return polymorphic(contact, "Contact", contact["name"])
        matter = rng.choice(matters)
        return polymorphic(matter, "Matter", matter["display_number"])

    for matter in matters:
        recipients = [matter["client"]] + ([contact_ref(rng.choice(contacts))] if rng.random() < 0.3 else [])
        matter["matter_bill_recipients"] = []
        for ref in recipients:
            entry: Record = {"id": firm.allocate_id("matter_bill_recipients"), "etag": "",
                             "created_at": matter["created_at"], "updated_at": matter["updated_at"],
                             "recipient": dict(ref)}
            entry["etag"] = compute_etag(entry)
            matter["matter_bill_recipients"].append(entry)

    for _ in range(COUNTS["clio_payments_links"] * firm.scale):
        rec, minutes = base("clio_payments_links")
        bill = rng.choice(bills)
        payer, payee = rng.choice(contacts), rng.choice(contacts)
        rec.update(active=rng.random() < 0.7, amount=money(rng.uniform(100, 8000)), currency="USD",
                   description=f"Payment for invoice {bill['number']}", email_address=payer["primary_email_address"],
                   expires_at=stamp(minutes + 60 * 24 * 30), is_allocated_as_revenue=rng.random() < 0.5,
                   redirect_url=None, url=f"https://payments.example.test/pay/{rec['id']}",
                   bill={"id": bill["id"], "number": bill["number"]}, contact=contact_ref(payer),
                   destination_contact=contact_ref(payee))
        firm.clio_payments_links[rec["id"]] = rec
    links = list(firm.clio_payments_links.values())

    for _ in range(COUNTS["clio_payments_payments"] * firm.scale):
        rec, minutes = base("clio_payments_payments")
        payer, matter = rng.choice(contacts), rng.choice(matters)
        link = rng.choice(links)
        rec.update(amount=money(rng.uniform(100, 8000)), confirmation_number=f"CP-{rec['id']}", currency="USD",
                   deposit_as_revenue=rng.random() < 0.5, description="Online card payment",
                   email_address=payer["primary_email_address"], state=rng.choice(("pending", "completed")),
                   contact=contact_ref(payer), user=user_ref(rng.choice(users)),
                   clio_payments_link={"id": link["id"]}, matters=[matter_ref(matter)])
        firm.clio_payments_payments[rec["id"]] = rec

    for _ in range(COUNTS["reminders"] * firm.scale):
        rec, minutes = base("reminders")
        rec.update(duration=rng.choice((15, 60, 1440)), next_delivery_at=stamp(minutes + 60 * 24),
                   state=rng.choice(("pending", "sent")), notification_method={"id": 1, "type": "Email"},
                   subject=subject())
        firm.reminders[rec["id"]] = rec

    for _ in range(COUNTS["log_entries"] * firm.scale):
        rec, minutes = base("log_entries")
        item = subject()
        rec.update(type="ContactLogEntry" if item["type"] == "Contact" else "MatterLogEntry",
                   accessed_at=stamp(minutes), item=item, user=user_ref(rng.choice(users)))
        firm.log_entries[rec["id"]] = rec

    for activity in firm.activities.values():
        activity["subject"] = subject() if rng.random() < 0.3 else None
    for allocation in firm.allocations.values():
        payer = rng.choice(contacts)
        allocation["parent"] = polymorphic(payer, "Contact", payer["name"]) if rng.random() < 0.5 else {
            "id": allocation["bill"]["id"], "type": "Payment", "identifier": f"Payment {allocation['id']}"}
