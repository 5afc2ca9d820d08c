"""The places issue 10's spec walk found, over real sockets: client -> proxy -> demo backend.

For the restricted caller (user 2), every contact at each newly covered place is either what the firm
holds (visible) or the redacted stub (hidden), judged against the firm's own data; the hidden contacts'
names appear nowhere in the answer; non-contact subjects pass untouched; an all-visible caller sees all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from demo_backend.model import Record
from tests.test_rules_demo import ADA, CONTACT_TYPES, Stack, make_stack, visible_contacts


@pytest.fixture
async def stack(tmp_path: Path, settings_file: Path) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path, settings_file, "enforce"):
        yield s


Finder = Callable[[Record], list[Any]]


def at(key: str) -> Finder:
    return lambda record: [record.get(key)] if record.get(key) is not None else []


def recipients(record: Record) -> list[Any]:
    return [r["recipient"] for r in record.get("matter_bill_recipients") or [] if r.get("recipient")]


# (path, firm store, where the contacts are, whether entries are typed participants)
PLACES: list[tuple[str, str, list[Finder], bool]] = [
    ("/api/v4/clio_payments/links.json?fields=id,amount,contact{id,name,type},destination_contact{id,name,type}",
     "clio_payments_links", [at("contact"), at("destination_contact")], False),
    ("/api/v4/clio_payments/payments.json?fields=id,state,contact{id,name,type}",
     "clio_payments_payments", [at("contact")], False),
    ("/api/v4/matters.json?fields=id,display_number,matter_bill_recipients{id,recipient}",
     "matters", [recipients], False),
    ("/api/v4/activities.json?fields=id,note,subject{id,type,identifier}", "activities", [at("subject")], True),
    ("/api/v4/allocations.json?fields=id,amount,parent{id,type,identifier}", "allocations", [at("parent")], True),
    ("/api/v4/reminders.json?fields=id,state,subject{id,type,identifier}", "reminders", [at("subject")], True),
    ("/api/v4/log_entries.json?fields=id,type,item{id,type,identifier}", "log_entries", [at("item")], True),
]


def _is_stub(answer: Any, original: Record) -> bool:
    expected = {"id": original["id"], "redacted": True}
    if "type" in answer:
        expected["type"] = original["type"]
    if "name" in answer:
        expected["name"] = "****"
    return bool(answer == expected)


@pytest.mark.parametrize(("path", "store", "finders", "participants"), PLACES, ids=[p[1] for p in PLACES])
async def test_hidden_contacts_are_stubs_at_each_newly_covered_place(
        stack: Stack, path: str, store: str, finders: list[Finder], participants: bool) -> None:
    visible = visible_contacts(stack.firm, 2)
    records, _ = await stack.walk(path + "&limit=200")
    assert records, "the demo backend serves this endpoint"
    firm_store = stack.firm.store(store)
    hidden_seen = visible_seen = others = 0
    hidden_names: set[str] = set()
    for record in records:
        original = firm_store[record["id"]]
        for find in finders:
            for answer, truth in zip(find(record), find(original), strict=True):
                is_contact = not participants or truth["type"] in CONTACT_TYPES
                if not is_contact:
                    others += 1
                    assert answer == {k: truth[k] for k in answer}, "a non-contact subject is untouched"
                elif truth["id"] in visible:
                    visible_seen += 1
                    assert answer == {k: truth[k] for k in answer} and "redacted" not in answer
                else:
                    hidden_seen += 1
                    hidden_names.add(stack.firm.contacts[truth["id"]]["name"])
                    assert _is_stub(answer, truth), answer
    assert hidden_seen > 0, "the demo firm reaches hidden contacts here"
    assert visible_seen + others > 0
    raw = str(records)
    assert not [n for n in hidden_names if n in raw], "a hidden contact's name leaked"


async def test_one_payment_link_by_id_with_a_hidden_contact(stack: Stack) -> None:
    visible = visible_contacts(stack.firm, 2)
    link = next(r for r in stack.firm.clio_payments_links.values() if r["destination_contact"]["id"] not in visible)
    status, body = await stack.get(f"/api/v4/clio_payments/links/{link['id']}.json"
                                   "?fields=id,destination_contact{id,name,type}")
    assert status == 200
    assert body["data"]["destination_contact"] == {
        "id": link["destination_contact"]["id"], "name": "****", "type": link["destination_contact"]["type"],
        "redacted": True}


async def test_an_all_visible_caller_reads_every_contact_unredacted(stack: Stack) -> None:
    records, _ = await stack.walk("/api/v4/clio_payments/links.json?fields=id,contact{id,name,type}&limit=200",
                                  headers=ADA)
    assert [r["contact"] for r in records] == [
        r["contact"] for r in stack.firm.clio_payments_links.values()]
