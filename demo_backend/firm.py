"""generate_firm: the deterministic demo firm; every count grows linearly with `scale`."""

from __future__ import annotations

import random

from .activities import generate_activities
from .billing import generate_billing
from .files import generate_files
from .injury import generate_injury
from .matters import attach_relationships, generate_matters, generate_relationships
from .model import STORE_NAMES, Firm
from .naming import NameMaker
from .payments import generate_payments
from .people import generate_contacts, generate_users
from .shapes import refresh_etag
from .work import generate_work

__all__ = ["Firm", "generate_firm"]

# Stores whose records are nested inside others: their etags are final before their parents' are.
_FIRST = ("users", "activities", "relationships", "medical_records", "medical_bills")


def generate_firm(scale: int = 1, seed: int = 0) -> Firm:
    """The same (scale, seed) always gives an equal firm."""
    if scale < 1:
        raise ValueError("scale must be >= 1")
    rng = random.Random(seed)
    firm = Firm(scale=scale, seed=seed)
    names = NameMaker(rng)
    generate_users(firm, rng, names)
    generate_contacts(firm, rng, names)
    generate_matters(firm, rng)
    generate_relationships(firm, rng)
    generate_activities(firm, rng)
    generate_work(firm, rng)
    generate_files(firm, rng)
    generate_billing(firm, rng)
    generate_injury(firm, rng)
    generate_payments(firm)
    _finalize(firm)
    return firm


def _finalize(firm: Firm) -> None:
    """Compute every etag, inner records first, and leave next ids past the largest."""
    for contact in firm.contacts.values():
        for key in ("email_addresses", "phone_numbers", "addresses", "web_sites"):
            for item in contact[key]:
                refresh_etag(item)
    for conversation in firm.conversations.values():
        for membership in conversation["memberships"]:
            refresh_etag(membership)
    for name in _FIRST:
        for record in firm.store(name).values():
            refresh_etag(record)
    attach_relationships(firm)
    for name in STORE_NAMES:
        if name not in _FIRST:
            for record in firm.store(name).values():
                refresh_etag(record)
    for name in STORE_NAMES:
        store = firm.store(name)
        if store and name != "billable_matters":
            firm.next_ids[name] = max(firm.next_ids.get(name, 0), max(store) + 1)
