"""Matters, their access sets and relationships; the blank matter and relationship a POST starts from."""

from __future__ import annotations

import random

from .catalog import CUSTOM_FIELDS, MATTER_STAGES, PRACTICE_AREAS, RELATIONSHIP_DESCRIPTIONS, custom_field_value
from .model import Firm, Record
from .shapes import attorney_ref, contact_ref, day, matter_ref, stamp

MATTERS_PER_SCALE = 40
RELATIONSHIPS_PER_SCALE = 60
KINDS = {
    "Personal Injury": ("MVA", "Slip and Fall", "Dog Bite", "Medical Malpractice"),
    "Family": ("Divorce", "Custody", "Adoption"),
    "Employment": ("Wrongful Termination", "Wage Claim", "Discrimination"),
    "Estate Planning": ("Trust Administration", "Probate", "Will Contest"),
    "Corporate": ("Formation", "Acquisition", "Shareholder Dispute"),
    "Real Estate": ("Purchase", "Lease Dispute", "Quiet Title"),
    "Criminal Defense": ("DUI", "Misdemeanor", "Appeal"),
}


def blank_matter(matter_id: int, when: str) -> Record:
    return {
        "id": matter_id, "etag": "", "number": 0, "display_number": "", "custom_number": None, "description": None,
        "status": "Open", "billable": True, "billing_method": "hourly", "open_date": None, "close_date": None,
        "pending_date": None, "location": None, "client_reference": None, "created_at": when, "updated_at": when,
        "client": None, "responsible_attorney": None, "originating_attorney": None, "responsible_staff": None,
        "practice_area": None, "matter_stage": None, "relationships": [], "custom_field_values": [],
    }


def blank_relationship(relationship_id: int, when: str) -> Record:
    return {"id": relationship_id, "etag": "", "description": None, "created_at": when, "updated_at": when,
            "matter": None, "contact": None}


def display_number(number: int, client: Record | None) -> str:
    if client is None:
        return f"{number:05d}"
    label = client["last_name"] if client["type"] == "Person" and client["last_name"] else client["name"]
    return f"{number:05d}-{label}"


def relationship_stub(relationship: Record) -> Record:
    """The Relationship_base nested in a matter: no contact, as in the real API."""
    return {key: relationship[key] for key in ("id", "etag", "description", "created_at", "updated_at")}


def sync_matter_relationships(firm: Firm, matter_id: int) -> None:
    """Rebuild one matter's nested `relationships` from the relationship store."""
    matter = firm.matters.get(matter_id)
    if matter is not None:
        matter["relationships"] = [
            relationship_stub(r) for r in firm.relationships.values()
            if r["matter"] is not None and r["matter"]["id"] == matter_id
        ]


def _pick_access(
    rng: random.Random, index: int, attorneys: list[Record], others: list[int]
) -> tuple[int, int, set[int]]:
    """(responsible, originating, extra members); matters 0-3 pin user 2's situation for tests."""
    not_two = [a["id"] for a in attorneys if a["id"] != 2] or [1]
    resp, orig = rng.choice(attorneys)["id"], rng.choice(attorneys)["id"]
    members = set(rng.sample(others, k=min(len(others), rng.randrange(0, 3))))
    if index == 0:
        resp = 2
    elif index == 1:
        resp, orig = rng.choice(not_two), 2
    elif index in (2, 3):
        resp, orig = rng.choice(not_two), rng.choice(not_two)
        members.discard(2)
    return resp, orig, members - {resp, orig}


def generate_matters(firm: Firm, rng: random.Random) -> None:
    attorneys = [u for u in firm.users.values() if u["subscription_type"] == "Attorney"]
    staff = [u for u in firm.users.values() if u["subscription_type"] != "Attorney"]
    other_ids = [uid for uid in firm.users if uid != 1]
    cards = len(firm.users)
    candidates = [c for c in firm.contacts.values() if c["id"] > 10000 + cards]
    companies = [c for c in candidates if c["type"] == "Company"]
    for index in range(MATTERS_PER_SCALE * firm.scale):
        mid = firm.allocate_id("matters")
        minutes = rng.randrange(0, 60 * 24 * 500)
        matter = blank_matter(mid, stamp(minutes))
        client = rng.choice(candidates)
        client["is_client"] = True
        area_id, area = rng.choice(PRACTICE_AREAS)
        opponent = rng.choice(companies)["name"] if companies else "State of California"
        resp, orig, members = _pick_access(rng, index, attorneys, other_ids)
        status = rng.choices(("Open", "Pending", "Closed"), (7, 1, 2))[0]
        matter.update(
            number=index + 1, display_number=display_number(index + 1, client),
            description=f"{client['name']} v. {opponent} ({rng.choice(KINDS[area])})", status=status,
            billable=rng.random() < 0.9, billing_method=rng.choices(("hourly", "flat", "contingency"), (6, 2, 2))[0],
            open_date=day(minutes // (60 * 24)),
            close_date=day(minutes // (60 * 24) + 200) if status == "Closed" else None,
            pending_date=day(minutes // (60 * 24) - 5) if status == "Pending" else None,
            location=rng.choice(("Los Angeles", "Pasadena", "Long Beach", "Irvine")),
            updated_at=stamp(minutes + rng.randrange(0, 60 * 24 * 90)), client=contact_ref(client),
            responsible_attorney=attorney_ref(firm.users[resp]), originating_attorney=attorney_ref(firm.users[orig]),
            responsible_staff=attorney_ref(rng.choice(staff)) if staff and rng.random() < 0.5 else None,
            practice_area={"id": area_id, "name": area},
            matter_stage=dict(zip(("id", "name"), rng.choice(MATTER_STAGES), strict=True)),
        )
        values = matter["custom_field_values"]
        if area == "Personal Injury":
            values.append(custom_field_value(firm, CUSTOM_FIELDS[240101], rng.choice((15000, 50000, 100000, 250000))))
        if rng.random() < 0.5:
            values.append(custom_field_value(firm, CUSTOM_FIELDS[240102], rng.choice((3140001, 3140002, 3140003))))
        if rng.random() < 0.5:
            values.append(custom_field_value(firm, CUSTOM_FIELDS[240103], rng.choice(candidates)["id"]))
        if rng.random() < 0.2:
            values.append(custom_field_value(firm, CUSTOM_FIELDS[240104], rng.choice(candidates)["id"]))
        firm.matters[mid] = matter
        firm.matter_members[mid] = members


def generate_relationships(firm: Firm, rng: random.Random) -> None:
    cards = len(firm.users)
    candidates = [c for c in firm.contacts.values() if c["id"] > 10000 + cards]
    matters = list(firm.matters.values())
    for _ in range(RELATIONSHIPS_PER_SCALE * firm.scale):
        rid = firm.allocate_id("relationships")
        matter = rng.choice(matters)
        contact = rng.choice(candidates)
        if matter["client"] and contact["id"] == matter["client"]["id"]:
            contact = rng.choice(candidates)
        description = rng.choice(RELATIONSHIP_DESCRIPTIONS)
        if description == "Co-counsel":
            contact["is_co_counsel"] = True
        minutes = rng.randrange(0, 60 * 24 * 500)
        relationship = blank_relationship(rid, stamp(minutes))
        relationship.update(description=description, matter=matter_ref(matter), contact=contact_ref(contact))
        firm.relationships[rid] = relationship


def attach_relationships(firm: Firm) -> None:
    """Fill every matter's nested `relationships` (after the relationships' etags are final)."""
    for matter in firm.matters.values():
        matter["relationships"] = []
    for relationship in firm.relationships.values():
        if relationship["matter"] is not None:
            firm.matters[relationship["matter"]["id"]]["relationships"].append(relationship_stub(relationship))
