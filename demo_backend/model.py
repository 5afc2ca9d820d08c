"""The in-memory firm: one plain dict store per resource (id -> full record) plus matter access.

Matter access is legacy behaviour the backend already has: a user sees a matter when they are its
responsible or originating attorney, one of its extra members, or an Administrator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Record = dict[str, Any]
Store = dict[int, Record]

# First id of each resource at every scale; ranges of different resources may overlap at large scales.
ID_BASES: Mapping[str, int] = MappingProxyType(
    {
        "users": 1,
        "contacts": 10001,
        "matters": 20001,
        "relationships": 30001,
        "activities": 40001,
        "calendar_entries": 50001,
        "communications": 60001,
        "tasks": 70001,
        "notes": 80001,
        "bills": 90001,
        "documents": 100001,
        "folders": 110001,
        "conversations": 120001,
        "conversation_memberships": 125001,
        "conversation_messages": 130001,
        "allocations": 140001,
        "bank_transactions": 150001,
        "bank_transfers": 160001,
        "credit_memos": 170001,
        "outstanding_client_balances": 180001,
        "trust_line_items": 190001,
        "medical_records_details": 200001,
        "medical_records": 210001,
        "medical_bills": 220001,
        "damages": 230001,
        "custom_field_values": 250001,
        "clio_payments_links": 400001,
        "clio_payments_payments": 410001,
        "reminders": 420001,
        "log_entries": 430001,
        "matter_bill_recipients": 440001,
        "email_addresses": 300001,
        "phone_numbers": 310001,
        "addresses": 320001,
        "web_sites": 330001,
    }
)

ADMIN_ROLE = "Administrator"


@dataclass
class Firm:
    """Everything the demo backend serves. Stores keep records in ascending id order."""

    scale: int
    seed: int
    users: Store = field(default_factory=dict)
    contacts: Store = field(default_factory=dict)
    matters: Store = field(default_factory=dict)
    relationships: Store = field(default_factory=dict)
    activities: Store = field(default_factory=dict)
    calendar_entries: Store = field(default_factory=dict)
    communications: Store = field(default_factory=dict)
    tasks: Store = field(default_factory=dict)
    notes: Store = field(default_factory=dict)
    bills: Store = field(default_factory=dict)
    documents: Store = field(default_factory=dict)
    folders: Store = field(default_factory=dict)
    conversations: Store = field(default_factory=dict)
    conversation_messages: Store = field(default_factory=dict)
    allocations: Store = field(default_factory=dict)
    bank_transactions: Store = field(default_factory=dict)
    bank_transfers: Store = field(default_factory=dict)
    credit_memos: Store = field(default_factory=dict)
    outstanding_client_balances: Store = field(default_factory=dict)
    billable_matters: Store = field(default_factory=dict)
    trust_line_items: Store = field(default_factory=dict)
    medical_records_details: Store = field(default_factory=dict)
    medical_records: Store = field(default_factory=dict)  # the same dicts as nested in the details
    medical_bills: Store = field(default_factory=dict)  # the same dicts as nested in the details
    damages: Store = field(default_factory=dict)
    clio_payments_links: Store = field(default_factory=dict)
    clio_payments_payments: Store = field(default_factory=dict)
    reminders: Store = field(default_factory=dict)
    log_entries: Store = field(default_factory=dict)
    # matter id -> extra user ids with access (besides responsible and originating attorney)
    matter_members: dict[int, set[int]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)

    def store(self, name: str) -> Store:
        """The store of a resource by its path name (`contacts`, `calendar_entries`, ...)."""
        if name not in _STORE_NAMES:
            raise KeyError(name)
        value: Store = getattr(self, name)
        return value

    def allocate_id(self, name: str) -> int:
        """A fresh id for a new record (or sub-record) of `name`."""
        next_id = self.next_ids.get(name, ID_BASES[name])
        self.next_ids[name] = next_id + 1
        return next_id

    def is_admin(self, user_id: int) -> bool:
        user = self.users.get(user_id)
        return user is not None and ADMIN_ROLE in user["roles"]

    def matter_access(self, matter_id: int) -> frozenset[int]:
        """User ids (besides Administrators) that can access the matter."""
        matter = self.matters.get(matter_id)
        if matter is None:
            return frozenset()
        ids = set(self.matter_members.get(matter_id, ()))
        for key in ("responsible_attorney", "originating_attorney"):
            ref = matter.get(key)
            if isinstance(ref, dict):
                ids.add(ref["id"])
        return frozenset(ids)

    def accessible_matters(self, user_id: int) -> frozenset[int] | None:
        """Matter ids the user can access, or None when the user can access every matter."""
        if self.is_admin(user_id):
            return None
        return frozenset(mid for mid in self.matters if user_id in self.matter_access(mid))

    def can_access(self, user_id: int, matter_id: int) -> bool:
        if matter_id not in self.matters:
            return False
        return self.is_admin(user_id) or user_id in self.matter_access(matter_id)


_STORE_NAMES = frozenset(
    f.name for f in dataclasses.fields(Firm) if f.name not in ("scale", "seed", "matter_members", "next_ids")
)
STORE_NAMES: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Firm) if f.name in _STORE_NAMES
)
