"""Personal Injury records: medical records details (with nested medical records and bills) and damages.

The nested medical records and bills are the same dicts as in their own stores, so PATCH shows everywhere.
"""

from __future__ import annotations

import random

from .model import Firm, Record
from .shapes import contact_ref, day, matter_ref, money, stamp

COUNTS = {"medical_records_details": 15, "damages": 20}


def blank_medical_records_detail(detail_id: int, when: str) -> Record:
    return {
        "id": detail_id, "etag": "", "description": None, "in_treatment": False, "treatment_start_date": None,
        "treatment_end_date": None, "records_status": "not_requested", "records_request_date": None,
        "records_follow_up_date": None, "bills_status": "not_requested", "bills_request_date": None,
        "bills_follow_up_date": None, "created_at": when, "updated_at": when, "matter": None,
        "medical_provider": None, "medical_records": [], "medical_bills": [],
    }


def blank_medical_record(record_id: int, when: str) -> Record:
    return {"id": record_id, "etag": "", "document_id": None, "start_date": None, "end_date": None,
            "created_at": when, "updated_at": when}


def blank_medical_bill(bill_id: int, when: str) -> Record:
    return {"id": bill_id, "etag": "", "name": None, "amount": 0.0, "adjustment": 0.0, "bill_date": None,
            "bill_received_date": None, "damage_type": "special", "document_id": None, "created_at": when,
            "updated_at": when}


def blank_damage(damage_id: int, when: str) -> Record:
    return {"id": damage_id, "etag": "", "damage_type": "special", "amount": 0.0, "description": None,
            "created_at": when, "updated_at": when, "matter": None}


def generate_injury(firm: Firm, rng: random.Random) -> None:
    matters = [m for m in firm.matters.values() if m["practice_area"]["name"] == "Personal Injury"]
    matters = matters or list(firm.matters.values())
    providers = [c for c in firm.contacts.values() if c["type"] == "Company"] or list(firm.contacts.values())
    documents: list[int | None] = [*firm.documents] or [None]
    for _ in range(COUNTS["medical_records_details"] * firm.scale):
        minutes = rng.randrange(0, 60 * 24 * 600)
        when = stamp(minutes)
        detail = blank_medical_records_detail(firm.allocate_id("medical_records_details"), when)
        provider = rng.choice(providers)
        start = minutes // 1440
        in_treatment = rng.random() < 0.3
        detail.update(
            description=f"{provider['name']} - post-accident treatment", in_treatment=in_treatment,
            treatment_start_date=stamp(start * 1440 - 540), treatment_end_date=None if in_treatment else stamp(
                (start + 120) * 1440 - 540),
            records_status=rng.choice(("requested", "received", "not_requested")),
            records_request_date=stamp((start + 10) * 1440 - 540),
            bills_status=rng.choice(("requested", "received", "not_requested")),
            bills_request_date=stamp((start + 10) * 1440 - 540),
            matter=matter_ref(rng.choice(matters)), medical_provider=contact_ref(provider),
        )
        for _ in range(rng.randrange(1, 3)):
            record = blank_medical_record(firm.allocate_id("medical_records"), when)
            record.update(document_id=rng.choice(documents), start_date=day(start), end_date=day(start + 120))
            detail["medical_records"].append(record)
            firm.medical_records[record["id"]] = record
        for _ in range(rng.randrange(1, 3)):
            bill = blank_medical_bill(firm.allocate_id("medical_bills"), when)
            amount = money(rng.uniform(500, 20000))
            bill.update(name=f"{provider['name']} invoice #{rng.randrange(1000, 9999)}", amount=amount,
                        adjustment=money(amount * rng.choice((0.0, 0.1, 0.2))), bill_date=day(start + 121),
                        bill_received_date=day(start + 125), document_id=rng.choice(documents))
            detail["medical_bills"].append(bill)
            firm.medical_bills[bill["id"]] = bill
        firm.medical_records_details[detail["id"]] = detail
    for _ in range(COUNTS["damages"] * firm.scale):
        minutes = rng.randrange(0, 60 * 24 * 600)
        damage = blank_damage(firm.allocate_id("damages"), stamp(minutes))
        kind = rng.choice(("special", "general", "punitive"))
        damage.update(damage_type=kind, amount=money(rng.uniform(1000, 100000)),
                      description=rng.choice(("Lost wages", "Pain and suffering", "Property damage",
                                              "Future medical care")), matter=matter_ref(rng.choice(matters)))
        firm.damages[damage["id"]] = damage


def detail_of(firm: Firm, key: str, item_id: int) -> Record | None:
    """The medical records detail holding medical record/bill `item_id` (`key` names the nested list)."""
    for detail in firm.medical_records_details.values():
        if any(item["id"] == item_id for item in detail[key]):
            return detail
    return None
