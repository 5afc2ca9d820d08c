"""Fixed reference data of the demo firm: custom fields, practice areas, activity vocabularies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .model import Firm, Record
from .shapes import contact_ref


@dataclass(frozen=True)
class CustomField:
    id: int
    name: str
    field_type: str  # date | numeric | picklist | contact
    options: tuple[tuple[int, str], ...] = ()


CUSTOM_FIELDS: Mapping[int, CustomField] = MappingProxyType(
    {
        cf.id: cf
        for cf in (
            CustomField(240011, "Date of Accident", "date"),
            CustomField(240012, "Emergency Contact", "contact"),
            CustomField(240101, "Policy Limit", "numeric"),
            CustomField(
                240102, "Liability", "picklist", ((3140001, "Disputed"), (3140002, "Accepted"), (3140003, "Unknown"))
            ),
            CustomField(240103, "Adjuster", "contact"),
            CustomField(240104, "Referring Attorney", "contact"),
        )
    }
)

PRACTICE_AREAS = (
    (901, "Personal Injury"), (902, "Family"), (903, "Employment"), (904, "Estate Planning"),
    (905, "Corporate"), (906, "Real Estate"), (907, "Criminal Defense"),
)
MATTER_STAGES = ((1201, "Intake"), (1202, "Investigation"), (1203, "Discovery"), (1204, "Negotiation"), (1205, "Trial"))
ACTIVITY_DESCRIPTIONS = (
    (55501, "Drafting"), (55502, "Research"), (55503, "Court appearance"), (55504, "Client meeting"),
    (55505, "Phone call"), (55506, "Document review"), (55507, "Deposition"), (55508, "Travel"),
)
EXPENSE_CATEGORIES = (
    (7701, "Filing Fees"), (7702, "Postage"), (7703, "Copies"), (7704, "Expert Fees"), (7705, "Medical Records"),
    (7706, "Mileage"),
)
TASK_TYPES = ((4401, "Medical Records"), (4402, "Discovery"), (4403, "Filing"), (4404, "Client Follow-up"))
EVENT_TYPES = ((9901, "Deposition", "#367B9C"), (9902, "Hearing", "#B23A48"), (9903, "Meeting", "#4C8C4A"))
RELATIONSHIP_DESCRIPTIONS = (
    "Opposing Counsel", "Co-counsel", "Treating Physician", "Expert Witness", "Insurance Adjuster", "Witness",
    "Opposing Party", "Guardian",
)
BANK_ACCOUNTS = ((601, "IOLTA Trust Account", "Trust"), (602, "Operating Account", "Operating"))
GROUPS = ((7001, "Litigation Team"), (7002, "Intake Team"))


def custom_field_value(firm: Firm, cf: CustomField, value: Any) -> Record:
    """A custom field value as the API renders it; `value` is a contact id for contact-typed fields."""
    cfv_id = firm.allocate_id("custom_field_values")
    item: Record = {
        "id": f"{cf.field_type}-{cfv_id}",
        "field_name": cf.name,
        "field_type": cf.field_type,
        "value": None if value is None else str(value),
        "picklist_option": None,
        "contact": None,
        "custom_field": {"id": cf.id},
    }
    if cf.field_type == "picklist":
        option = next((o for o in cf.options if str(o[0]) == str(value)), None)
        item["picklist_option"] = None if option is None else {"id": option[0], "option": option[1]}
    if cf.field_type == "contact" and value is not None:
        item["contact"] = contact_ref(firm.contacts[int(value)])
    return item
