"""Calendar entries, communications, tasks and notes (each may nest its `time_entries`).

Nested time entries are the very activity dicts of the activity store, so they never go stale.
"""

from __future__ import annotations

import random

from .catalog import EVENT_TYPES, TASK_TYPES
from .model import Firm, Record
from .shapes import (
    calendar_attendee,
    calendar_id,
    calendar_owner,
    contact_attendee,
    contact_participant,
    contact_ref,
    day,
    matter_ref,
    stamp,
    user_participant,
    user_ref,
)

PER_SCALE = 80
LINKS = {"calendar_entries": "calendar_entry", "communications": "communication", "tasks": "task", "notes": ""}


def blank_calendar_entry(entry_id: int, when: str) -> Record:
    return {
        "id": str(entry_id), "etag": "", "summary": None, "description": None, "location": None, "all_day": False,
        "start_at": when, "end_at": when, "start_at_time_zone": "America/Los_Angeles", "recurrence_rule": None,
        "parent_calendar_entry_id": None, "court_rule": False, "permission": "owner", "calendar_owner_id": None,
        "time_entries_count": 0, "created_at": when, "updated_at": when, "calendar_owner": None, "matter": None,
        "calendar_entry_event_type": None, "attendees": [], "time_entries": [],
    }


def blank_communication(communication_id: int, when: str) -> Record:
    return {
        "id": communication_id, "etag": "", "type": "EmailCommunication", "subject": None, "body": None,
        "date": when[:10], "received_at": when, "time_entries_count": 0, "created_at": when, "updated_at": when,
        "user": None, "matter": None, "senders": [], "receivers": [], "time_entries": [],
    }


def blank_task(task_id: int, when: str) -> Record:
    return {
        "id": task_id, "etag": "", "name": None, "description": None, "description_text_type": "plain_text",
        "status": "pending", "priority": "Normal", "due_at": None, "permission": "public", "completed_at": None,
        "notify_completion": False, "statute_of_limitations": False, "time_estimated": None,
        "time_entries_count": 0, "created_at": when, "updated_at": when, "matter": None, "assignee": None,
        "assigner": None, "task_type": None, "time_entries": [],
    }


def blank_note(note_id: int, when: str) -> Record:
    return {
        "id": note_id, "etag": "", "type": "Matter", "subject": None, "detail": None,
        "detail_text_type": "plain_text", "date": when[:10], "time_entries_count": 0, "created_at": when,
        "updated_at": when, "matter": None, "contact": None, "author": None, "time_entries": [],
    }


class _Context:
    """Lookups shared by the generators of this module."""

    def __init__(self, firm: Firm, rng: random.Random) -> None:
        self.firm, self.rng = firm, rng
        self.users = list(firm.users.values())
        self.matters = list(firm.matters.values())
        self.contacts = [c for c in firm.contacts.values() if c["id"] > 10000 + len(firm.users)]
        self.matter_contacts: dict[int, list[int]] = {m["id"]: [m["client"]["id"]] for m in self.matters}
        for rel in firm.relationships.values():
            self.matter_contacts[rel["matter"]["id"]].append(rel["contact"]["id"])
        self.unlinked: dict[int, list[Record]] = {}
        for activity in firm.activities.values():
            if activity["type"] == "TimeEntry" and activity["matter"] is not None:
                self.unlinked.setdefault(activity["matter"]["id"], []).append(activity)

    def matter(self, share: float = 0.9) -> Record | None:
        return self.rng.choice(self.matters) if self.rng.random() < share else None

    def member(self, matter: Record | None) -> Record:
        if matter is None:
            return self.rng.choice(self.users)
        return self.firm.users[self.rng.choice(sorted(self.firm.matter_access(matter["id"])))]

    def contact_near(self, matter: Record | None) -> Record:
        if matter is None or self.rng.random() < 0.2:
            return self.rng.choice(self.contacts)
        return self.firm.contacts[self.rng.choice(self.matter_contacts[matter["id"]])]

    def link_time_entries(self, record: Record, matter: Record | None, link: str) -> None:
        pool = self.unlinked.get(matter["id"], []) if matter is not None else []
        for _ in range(min(len(pool), self.rng.choice((0, 0, 1, 1, 2)))):
            activity = pool.pop()
            if link:
                activity[link] = {"id": record["id"]}
            record["time_entries"].append(activity)
        record["time_entries_count"] = len(record["time_entries"])


def generate_work(firm: Firm, rng: random.Random) -> None:
    ctx = _Context(firm, rng)
    n = PER_SCALE * firm.scale
    for _ in range(n):
        _calendar_entry(ctx)
    for _ in range(n):
        _communication(ctx)
    for _ in range(n):
        _task(ctx)
    for _ in range(n):
        _note(ctx)


def _calendar_entry(ctx: _Context) -> None:
    rng, firm = ctx.rng, ctx.firm
    eid = firm.allocate_id("calendar_entries")
    minutes = rng.randrange(0, 60 * 24 * 600)
    entry = blank_calendar_entry(eid, stamp(minutes))
    matter = ctx.matter(0.85)
    owner = ctx.member(matter)
    event_id, event_name, color = rng.choice(EVENT_TYPES)
    who = ctx.contact_near(matter)
    entry.update(
        summary=f"{event_name} - {who['name']}", description=rng.choice(("Remote via Zoom.", "Bring exhibits.", None)),
        location=rng.choice(("Zoom", "Conference Room A", "Superior Court, Dept. 12")),
        start_at=stamp(minutes + 60 * 24), end_at=stamp(minutes + 60 * 24 + 90),
        calendar_owner_id=calendar_id(owner["id"]),
        calendar_owner=calendar_owner(owner), matter=None if matter is None else matter_ref(matter),
        calendar_entry_event_type={"id": event_id, "name": event_name, "color": color},
    )
    attendees = [calendar_attendee(owner)]
    other = ctx.member(matter)
    if other is not owner and rng.random() < 0.5:
        attendees.append(calendar_attendee(other))
    attendees.append(contact_attendee(who))
    if rng.random() < 0.4:
        extra = ctx.contact_near(matter)
        if extra is not who:
            attendees.append(contact_attendee(extra))
    entry["attendees"] = attendees
    ctx.link_time_entries(entry, matter, "calendar_entry")
    firm.calendar_entries[eid] = entry


def _communication(ctx: _Context) -> None:
    rng, firm = ctx.rng, ctx.firm
    cid = firm.allocate_id("communications")
    minutes = rng.randrange(0, 60 * 24 * 600)
    comm = blank_communication(cid, stamp(minutes))
    matter = ctx.matter()
    user = ctx.member(matter)
    contact = ctx.contact_near(matter)
    inbound = rng.random() < 0.5
    people = [contact_participant(contact)], [user_participant(user)]
    comm.update(
        type=rng.choices(("EmailCommunication", "PhoneCommunication"), (3, 1))[0],
        subject=("RE: " if inbound else "") + rng.choice(
            ("Records request", "Settlement offer", "Status update", "Scheduling")),
        body=rng.choice(("Records attached. Please confirm receipt.", "Following up on our call.", "See below.")),
        date=day(minutes // (60 * 24)), received_at=stamp(minutes), user=user_ref(user),
        matter=None if matter is None else matter_ref(matter),
        senders=people[0] if inbound else people[1], receivers=people[1] if inbound else people[0],
    )
    if rng.random() < 0.3:
        comm["receivers"].append(contact_participant(ctx.contact_near(matter)))
    ctx.link_time_entries(comm, matter, "communication")
    firm.communications[cid] = comm


def _task(ctx: _Context) -> None:
    rng, firm = ctx.rng, ctx.firm
    tid = firm.allocate_id("tasks")
    minutes = rng.randrange(0, 60 * 24 * 600)
    task = blank_task(tid, stamp(minutes))
    matter = ctx.matter()
    assigner = ctx.member(matter)
    assignee = contact_participant(ctx.contact_near(matter)) if rng.random() < 0.2 else user_participant(
        ctx.member(matter))
    type_id, type_name = rng.choice(TASK_TYPES)
    status = rng.choice(("pending", "in_progress", "in_review", "complete"))
    task.update(
        name=f"{type_name}: {rng.choice(('send authorizations', 'draft responses', 'file motion', 'call client'))}",
        description=rng.choice(("Use updated form (rev. 2024).", "Check the court rules first.", None)),
        status=status, priority=rng.choice(("High", "Normal", "Low")), due_at=day(minutes // (60 * 24) + 14),
        completed_at=stamp(minutes + 60 * 24 * 7) if status == "complete" else None,
        time_estimated=rng.choice((None, 1800, 3600, 7200)), matter=None if matter is None else matter_ref(matter),
        assignee=assignee, assigner=user_ref(assigner), task_type={"id": type_id, "name": type_name},
    )
    ctx.link_time_entries(task, matter, "task")
    firm.tasks[tid] = task


def _note(ctx: _Context) -> None:
    rng, firm = ctx.rng, ctx.firm
    nid = firm.allocate_id("notes")
    minutes = rng.randrange(0, 60 * 24 * 600)
    note = blank_note(nid, stamp(minutes))
    matter = ctx.matter(0.7)
    author = ctx.member(matter)
    note.update(
        type="Matter" if matter is not None else "Contact",
        subject=rng.choice(("Client call - treatment update", "Strategy", "Intake notes", "Voicemail")),
        detail=rng.choice(("Client finished PT; wants settlement status update.", "Left voicemail.", "See memo.")),
        date=day(minutes // (60 * 24)), author=user_ref(author),
        matter=None if matter is None else matter_ref(matter),
        contact=None if matter is not None else contact_ref(ctx.contact_near(None)),
    )
    ctx.link_time_entries(note, matter, "")
    firm.notes[nid] = note
