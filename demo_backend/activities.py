"""Activities (TimeEntry, ExpenseEntry, HardCostEntry): blank record, derived amounts, generation.

`quantity` is in seconds for time entries (API >= 4.0.4) and in units for expenses.
"""

from __future__ import annotations

import math
import random

from .catalog import ACTIVITY_DESCRIPTIONS, EXPENSE_CATEGORIES
from .model import Firm, Record
from .shapes import contact_ref, day, matter_ref, money, stamp, user_ref

ACTIVITIES_PER_SCALE = 400
SYNTHETIC_ID_BASE = 900_000_000


def blank_activity(activity_id: int, when: str) -> Record:
    return {
        "id": activity_id, "etag": "", "type": "TimeEntry", "date": when[:10], "quantity": 0.0,
        "rounded_quantity": 0.0, "quantity_in_hours": 0.0, "rounded_quantity_in_hours": 0.0,
        "quantity_redacted": False, "price": 0.0, "total": 0.0, "non_billable": False, "non_billable_total": 0.0,
        "no_charge": False, "billed": False, "on_bill": False, "flat_rate": False, "contingency_fee": False,
        "note": None, "created_at": when, "updated_at": when, "matter": None, "user": None,
        "activity_description": None, "expense_category": None, "vendor": None, "calendar_entry": None,
        "communication": None, "task": None, "subject": None,
    }


def derive_amounts(activity: Record) -> None:
    """Recompute rounded quantities, hours and totals from `quantity`, `price` and the type."""
    quantity = float(activity["quantity"] or 0.0)
    price = float(activity["price"] or 0.0)
    activity["quantity"] = quantity
    if activity["type"] == "TimeEntry":
        rounded = math.ceil(quantity / 360.0) * 360.0
        activity["rounded_quantity"] = rounded
        activity["quantity_in_hours"] = round(quantity / 3600.0, 4)
        activity["rounded_quantity_in_hours"] = round(rounded / 3600.0, 4)
        total = money(rounded / 3600.0 * price)
    else:
        activity["rounded_quantity"] = None
        activity["quantity_in_hours"] = None
        activity["rounded_quantity_in_hours"] = None
        total = money(quantity * price)
    activity["total"] = total
    activity["non_billable_total"] = total if activity["non_billable"] else 0.0


def generate_activities(firm: Firm, rng: random.Random) -> None:
    users = list(firm.users.values())
    matters = list(firm.matters.values())
    vendors = [c for c in firm.contacts.values() if c["type"] == "Company"]
    notes = ("Draft motion to compel production", "Review defendant's RFP responses", "Call with client re status",
             "Prepare deposition outline", "Research statute of limitations", "Court filing fee",
             "Travel to hearing", "Medical records copy charge", "Expert witness retainer", "Meet and confer letter")
    for _ in range(ACTIVITIES_PER_SCALE * firm.scale):
        aid = firm.allocate_id("activities")
        minutes = rng.randrange(0, 60 * 24 * 600)
        activity = blank_activity(aid, stamp(minutes))
        kind = rng.choices(("TimeEntry", "ExpenseEntry", "HardCostEntry"), (75, 15, 10))[0]
        matter = rng.choice(matters) if rng.random() < 0.92 else None
        if matter is not None:
            user = firm.users[rng.choice(sorted(firm.matter_access(matter["id"])))]
        else:
            user = rng.choice(users)
        activity.update(type=kind, date=day(minutes // (60 * 24)), note=rng.choice(notes),
                        matter=None if matter is None else matter_ref(matter), user=user_ref(user),
                        non_billable=rng.random() < 0.1, billed=rng.random() < 0.3)
        activity["on_bill"] = activity["billed"]
        if kind == "TimeEntry":
            activity["quantity"] = float(rng.randrange(1, 80) * 360)
            activity["price"] = user["rate"]
            activity["activity_description"] = dict(zip(("id", "name"), rng.choice(ACTIVITY_DESCRIPTIONS), strict=True))
        else:
            activity["quantity"] = float(rng.randrange(1, 6))
            activity["price"] = float(rng.randrange(10, 500))
            activity["expense_category"] = dict(zip(("id", "name"), rng.choice(EXPENSE_CATEGORIES), strict=True))
            if vendors and rng.random() < 0.7:
                activity["vendor"] = contact_ref(rng.choice(vendors))
        derive_amounts(activity)
        firm.activities[aid] = activity


def synthetic_time_entry(index: int, user: Record, matter: Record | None) -> Record:
    """The index-th synthetic TimeEntry for big streamed bodies: same shape, no randomness, no storage."""
    aid = SYNTHETIC_ID_BASE + index + 1
    when = stamp(index % (60 * 24 * 600))
    activity = blank_activity(aid, when)
    activity.update(
        etag=f'"{aid:032x}"', quantity=float((index % 80 + 1) * 360), price=user["rate"],
        note=f"Synthetic time entry {index + 1}", matter=None if matter is None else matter_ref(matter),
        user=user_ref(user), activity_description=dict(
            zip(("id", "name"), ACTIVITY_DESCRIPTIONS[index % 8], strict=True)),
    )
    derive_amounts(activity)
    return activity
