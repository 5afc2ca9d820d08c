"""Documents, folders, conversations (with memberships) and conversation messages."""

from __future__ import annotations

import random

from .catalog import GROUPS
from .model import Firm, Record
from .shapes import contact_participant, contact_ref, grant_of, matter_ref, stamp, sub_record, user_participant

COUNTS = {"documents": 40, "folders": 10, "conversations": 15, "conversation_messages": 45}
DOC_NAMES = ("Medical records", "Police report", "Retainer agreement", "Demand letter", "Deposition transcript",
             "Settlement agreement", "Correspondence", "Expert report", "Photos", "Pleading")


def blank_document(document_id: int, when: str, kind: str = "Document") -> Record:
    """A Document (or, with kind="Folder", a Folder) with every field, empty."""
    record: Record = {"id": document_id, "etag": "", "type": kind, "name": None}
    if kind == "Document":
        record.update(filename=None, size=0, content_type="application/pdf", received_at=when)
    else:
        record["root"] = False
    record.update(locked=False, created_at=when, updated_at=when, deleted_at=None, parent=None, matter=None,
                  contact=None, access_grants=[])
    return record


def blank_conversation_message(message_id: int, when: str) -> Record:
    return {"id": message_id, "etag": "", "date": when[:10], "body": None, "created_at": when, "updated_at": when,
            "conversation": None, "matter": None, "sender": None, "receivers": []}


def grant_for(record: Record) -> Record:
    """The access grant naming a user, group or contact record."""
    kind = "User" if "roles" in record else record.get("type", "Group")
    return grant_of(record, kind if kind in ("User", "Person", "Company") else "Group")


def generate_files(firm: Firm, rng: random.Random) -> None:
    matters = list(firm.matters.values())
    contacts = [c for c in firm.contacts.values() if c["id"] > 10000 + len(firm.users)]
    groups = [{"id": gid, "name": name} for gid, name in GROUPS]

    def grants(matter: Record | None, contact: Record | None) -> list[Record]:
        pool = sorted(firm.matter_access(matter["id"])) if matter is not None else list(firm.users)
        out = [grant_for(firm.users[uid]) for uid in rng.sample(pool, k=min(len(pool), rng.randrange(1, 3)))]
        if rng.random() < 0.3:
            out.append(grant_of(rng.choice(groups), "Group"))
        if contact is not None and rng.random() < 0.5:
            out.append(grant_for(contact))
        return out

    for _ in range(COUNTS["folders"] * firm.scale):
        minutes = rng.randrange(0, 60 * 24 * 600)
        folder = blank_document(firm.allocate_id("folders"), stamp(minutes), "Folder")
        matter = rng.choice(matters) if rng.random() < 0.7 else None
        contact = firm.contacts[matter["client"]["id"]] if matter is not None else rng.choice(contacts)
        folder.update(name=f"{matter['display_number'] if matter else contact['name']} files",
                      root=matter is None, matter=None if matter is None else matter_ref(matter),
                      contact=contact_ref(contact) if matter is None or rng.random() < 0.3 else None)
        folder["access_grants"] = grants(matter, contact)
        firm.folders[folder["id"]] = folder
    folders = list(firm.folders.values())

    for _ in range(COUNTS["documents"] * firm.scale):
        minutes = rng.randrange(0, 60 * 24 * 600)
        doc = blank_document(firm.allocate_id("documents"), stamp(minutes))
        parent = rng.choice(folders) if rng.random() < 0.6 else None
        if parent is not None:
            matter = firm.matters[parent["matter"]["id"]] if parent["matter"] else None
        else:
            matter = rng.choice(matters) if rng.random() < 0.8 else None
        doc_contact = rng.choice(contacts) if matter is None or rng.random() < 0.3 else None
        name = f"{rng.choice(DOC_NAMES)} {doc['id']}.pdf"
        doc.update(name=name, filename=name, size=rng.randrange(20_000, 5_000_000),
                   parent=None if parent is None else {"id": parent["id"], "name": parent["name"], "type": "Folder"},
                   matter=None if matter is None else matter_ref(matter),
                   contact=None if doc_contact is None else contact_ref(doc_contact))
        doc["access_grants"] = grants(matter, doc_contact)
        firm.documents[doc["id"]] = doc

    _conversations(firm, rng, matters)


def _conversations(firm: Firm, rng: random.Random, matters: list[Record]) -> None:
    for _ in range(COUNTS["conversations"] * firm.scale):
        minutes = rng.randrange(0, 60 * 24 * 600)
        matter = rng.choice(matters) if rng.random() < 0.8 else None
        pool = sorted(firm.matter_access(matter["id"])) if matter is not None else list(firm.users)
        members = [user_participant(firm.users[u]) for u in rng.sample(pool, k=min(len(pool), rng.randrange(2, 4)))]
        if matter is not None and rng.random() < 0.4:
            members.append(contact_participant(firm.contacts[matter["client"]["id"]]))
        if len(members) < 2:
            members.append(user_participant(firm.users[1]))
        memberships = [sub_record(firm.allocate_id("conversation_memberships"), minutes, read=rng.random() < 0.5,
                                  archived=False) for _ in members]
        for membership, member in zip(memberships, members, strict=True):
            membership["member"] = member
        conversation_id = firm.allocate_id("conversations")
        firm.conversations[conversation_id] = {
            "id": conversation_id, "etag": "", "subject": rng.choice(("Settlement strategy", "Scheduling",
                                                                     "Discovery responses", "Client update")),
            "archived": False, "read_only": False, "read": rng.random() < 0.5, "message_count": 0,
            "time_entries_count": 0, "created_at": stamp(minutes), "updated_at": stamp(minutes),
            "matter": None if matter is None else matter_ref(matter), "memberships": memberships,
        }
    conversations = list(firm.conversations.values())
    for _ in range(COUNTS["conversation_messages"] * firm.scale):
        conversation = rng.choice(conversations)
        members = [m["member"] for m in conversation["memberships"]]
        sender = rng.choice(members)
        minutes = rng.randrange(0, 60 * 24 * 600)
        message = blank_conversation_message(firm.allocate_id("conversation_messages"), stamp(minutes))
        message.update(body=rng.choice(("Can you send the latest draft?", "Call moved to 3pm.", "Approved.",
                                        "Please review the attached.")),
                       conversation={"id": conversation["id"], "subject": conversation["subject"]},
                       matter=conversation["matter"], sender=sender,
                       receivers=[m for m in members if m is not sender])
        conversation["message_count"] += 1
        firm.conversation_messages[message["id"]] = message
