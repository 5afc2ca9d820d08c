"""Building blocks of records shared by generators and writers: etags, timestamps, nested references.

Nested references copy the shapes of `shared/clio/examples` (a contact is `{id, name, type}`, a matter
`{id, display_number}`, a participant `{id, type, name, identifier, initials, enabled}`).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson

from .model import Record

TZ = timezone(timedelta(hours=-7))
EPOCH = datetime(2023, 1, 2, 9, 0, 0, tzinfo=TZ)


def compute_etag(record: Record) -> str:
    """A quoted 32-hex etag derived from the record's content (everything but the etag itself)."""
    payload = orjson.dumps({k: v for k, v in record.items() if k != "etag"})
    return '"' + hashlib.md5(payload, usedforsecurity=False).hexdigest() + '"'


def refresh_etag(record: Record) -> None:
    record["etag"] = compute_etag(record)


def stamp(minutes: int) -> str:
    """An ISO timestamp `minutes` after the firm's epoch, e.g. `2023-03-20T16:41:07-07:00`."""
    return (EPOCH + timedelta(minutes=minutes)).isoformat()


def day(days: int) -> str:
    """An ISO date `days` after the firm's epoch."""
    return (EPOCH.date() + timedelta(days=days)).isoformat()


def today() -> str:
    return date.today().isoformat()


def now_stamp() -> str:
    return datetime.now(TZ).replace(microsecond=0).isoformat()


def initials_of(name: str) -> str:
    return "".join(part[0] for part in name.replace(".", "").split() if part and part[0].isalpha())[:3].upper()


def calendar_id(user_id: int) -> int:
    """The id of a user's own calendar (users attend calendar entries through their calendar)."""
    return 5000 + user_id


def contact_ref(contact: Record) -> Record:
    return {"id": contact["id"], "name": contact["name"], "type": contact["type"]}


def user_ref(user: Record) -> Record:
    return {"id": user["id"], "name": user["name"]}


def attorney_ref(user: Record) -> Record:
    return {"id": user["id"], "name": user["name"], "email": user["email"]}


def matter_ref(matter: Record) -> Record:
    return {"id": matter["id"], "display_number": matter["display_number"]}


def contact_participant(contact: Record) -> Record:
    return {
        "id": contact["id"],
        "type": contact["type"],
        "name": contact["name"],
        "identifier": contact["primary_email_address"],
        "initials": initials_of(contact["name"]),
        "enabled": None,
    }


def user_participant(user: Record) -> Record:
    return {
        "id": user["id"],
        "type": "User",
        "name": user["name"],
        "identifier": user["email"],
        "initials": user["initials"],
        "enabled": user["enabled"],
    }


def contact_attendee(contact: Record) -> Record:
    return {
        "id": contact["id"],
        "type": "Contact",
        "name": contact["name"],
        "email": contact["primary_email_address"],
        "enabled": None,
    }


def calendar_attendee(user: Record) -> Record:
    return {
        "id": calendar_id(user["id"]),
        "type": "Calendar",
        "name": user["name"],
        "email": user["email"],
        "enabled": user["enabled"],
    }


def calendar_owner(user: Record) -> Record:
    return {"id": calendar_id(user["id"]), "name": user["name"], "type": "UserCalendar"}


def grant_of(record: Record, kind: str) -> Record:
    """An access grant naming a user, group or contact (`kind` is User, Group, Person or Company)."""
    return {"id": record["id"], "type": kind, "name": record["name"]}


def money(value: float) -> float:
    return round(value, 2)


def sub_record(record_id: int, minutes: int, **values: Any) -> Record:
    """A small nested record (email address, phone number, ...) with id, etag and timestamps."""
    rec: Record = {"id": record_id, "etag": ""}
    rec.update(values)
    rec["created_at"] = stamp(minutes)
    rec["updated_at"] = stamp(minutes)
    refresh_etag(rec)
    return rec
