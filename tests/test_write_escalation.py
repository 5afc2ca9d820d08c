"""Issue 9, classes 1, 2, 3 and 8: escalation through writes and participant types, over real sockets.

1. A participant typed other than the exact non-contact types (`User`; `Calendar` for attendees) is a
   contact: a write naming a hidden one is refused and never forwarded.
2. A PATCH of a hidden time entry that retypes it, moves it or gives it away is a 403, never forwarded.
3. A write that would make a hidden contact visible (relationship, matter client, custom field value,
   bill payer or recipient, `<name>_id` spellings) is a 422, never forwarded.
8. An answer's participant typed otherwise (`person`, `Contact `) naming a hidden contact is stubbed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from proxy.policy.load import load_policies
from proxy.yamldoc import ConfigError
from tests.support.harness import POLICIES, RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

HIDDEN = 950
VISIBLE = 900  # the client of matter 500, which the caller sees
CANARY = "CANARY-Hidden-Person"
AUTH = {"Authorization": "Bearer token-2", "Content-Type": "application/json"}
HIDDEN_ENTRY = {"data": {"id": 101, "type": "TimeEntry", "user": {"id": 9}, "matter": {"id": 501}}}


@dataclass
class Rig:
    script: Script
    proxy: RunningProxy

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    def own_requests(self, method: str) -> list[str]:
        return [r.path_qs for r in self.script.forwarded if r.method == method]


@pytest.fixture
async def rig(settings_file: Path) -> AsyncIterator[Rig]:
    script = Script(
        caller={"id": 2, "roles": []},
        matters=[{"id": 500, "client": VISIBLE, "responsible_attorney": 2},
                 {"id": 501, "client": 904, "responsible_attorney": 9}],
        relationships=[{"contact": 901, "matter": 500}],
        created_contacts=[903],
        default_answer=(200, {"data": {"id": 1}}),
    )
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    yield Rig(script, proxy)
    await proxy.close()
    await backend.close()


async def send(rig: Rig, http: aiohttp.ClientSession, method: str, path: str, data: dict[str, Any]) -> int:
    body = json.dumps({"data": data}).encode()  # json, not orjson: some bodies hold integers past 64 bits
    async with http.request(method, rig.url(path), headers=AUTH, data=body) as r:
        await r.read()
        return r.status


# Class 1: participants in writes ------------------------------------------------------------------

SLOPPY_TYPES = ["contact", "person", "CONTACT", "", "Individual", "User ", " User", "user", "Contact ", "Group"]

PARTICIPANT_WRITES: list[tuple[str, str, str, Any, int]] = [
    # (method, path, key, how one entry is placed, seed status)
    ("POST", "/api/v4/tasks.json", "assignee", "one", 422),
    ("PATCH", "/api/v4/tasks/7.json", "assignee", "one", 422),
    ("POST", "/api/v4/calendar_entries.json", "attendees", "list", 422),
    ("PATCH", "/api/v4/calendar_entries/7.json", "attendees", "list", 422),
    ("POST", "/api/v4/communications.json", "senders", "list", 404),
    ("PATCH", "/api/v4/communications/7.json", "receivers", "list", 404),
    ("POST", "/api/v4/conversation_messages.json", "sender", "one", 422),
    ("POST", "/api/v4/conversation_messages.json", "receivers", "list", 422),
]


def placed(key: str, how: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry if how == "one" else [entry]}


@pytest.mark.parametrize("kind", SLOPPY_TYPES)
@pytest.mark.parametrize("method,path,key,how,status", PARTICIPANT_WRITES,
                         ids=[f"{m} {p.split('/')[3]} {k}" for m, p, k, _, _ in PARTICIPANT_WRITES])
async def test_a_participant_of_an_unknown_type_naming_a_hidden_contact_is_refused(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, key: str, how: str, status: int, kind: str
) -> None:
    assert await send(rig, http, method, path, placed(key, how, {"id": HIDDEN, "type": kind})) == status
    assert not rig.script.forwarded, "a write naming a hidden contact reached the backend"


@pytest.mark.parametrize("entry", [{"id": HIDDEN}, {"id": HIDDEN, "type": None}, {"id": HIDDEN, "type": 5},
                                   {"id": HIDDEN, "type": ["User"]}])
@pytest.mark.parametrize("method,path,key,how,status", PARTICIPANT_WRITES[:3],
                         ids=[f"{m} {p.split('/')[3]} {k}" for m, p, k, _, _ in PARTICIPANT_WRITES[:3]])
async def test_a_participant_without_a_string_type_is_a_bad_request(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, key: str, how: str, status: int,
    entry: dict[str, Any],
) -> None:
    assert await send(rig, http, method, path, placed(key, how, entry)) == 400
    assert not rig.script.forwarded


@pytest.mark.parametrize("method,path,data", [
    ("POST", "/api/v4/tasks.json", {"assignee": {"id": HIDDEN, "type": "User"}}),
    ("POST", "/api/v4/calendar_entries.json", {"attendees": [{"id": HIDDEN, "type": "Calendar"}]}),
    ("POST", "/api/v4/calendar_entries.json", {"attendees": [{"id": HIDDEN, "type": "User"}]}),
    ("POST", "/api/v4/communications.json", {"senders": [{"id": HIDDEN, "type": "User"}]}),
    ("POST", "/api/v4/tasks.json", {"assignee": {"id": VISIBLE, "type": "contact"}}),
])
async def test_the_exact_non_contact_types_and_visible_contacts_pass(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, data: dict[str, Any]
) -> None:
    if method == "PATCH":  # the answer about /matters/500 must be matter 500 (tests/test_reads.py)
        rig.script.default_answer = (200, {"data": {"id": int(path.rsplit("/", 1)[1].removesuffix(".json"))}})
    assert await send(rig, http, method, path, data) == 200
    assert rig.own_requests(method), "an allowed write was not forwarded"


@pytest.mark.parametrize("kind", ["Calendar", "Group"])
async def test_a_type_that_is_not_a_contact_elsewhere_is_one_in_a_task(
    rig: Rig, http: aiohttp.ClientSession, kind: str
) -> None:
    """`Calendar` is a non-contact among attendees only; an assignee typed so is judged as a contact."""
    assert await send(rig, http, "POST", "/api/v4/tasks.json", {"assignee": {"id": HIDDEN, "type": kind}}) == 422
    assert not rig.script.forwarded


# The `<name>_id` spelling of a reference ----------------------------------------------------------

@pytest.mark.parametrize("method,path,data,status", [
    ("POST", "/api/v4/activities.json", {"vendor_id": HIDDEN}, 422),
    ("PATCH", "/api/v4/activities/101.json", {"vendor_id": str(HIDDEN)}, 422),
    ("POST", "/api/v4/tasks.json", {"assignee_id": HIDDEN, "assignee_type": "User"}, 422),
    ("POST", "/api/v4/conversation_messages.json", {"sender_id": HIDDEN}, 422),
    ("POST", "/api/v4/activities.json", {"vendor_id": "abc"}, 400),
    ("POST", "/api/v4/activities.json", {"vendor_id": True}, 400),
])
async def test_a_reference_spelled_name_id_is_checked_like_name(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, data: dict[str, Any], status: int
) -> None:
    assert await send(rig, http, method, path, data) == status
    assert not rig.own_requests(method)


async def test_a_visible_name_id_passes(rig: Rig, http: aiohttp.ClientSession) -> None:
    assert await send(rig, http, "POST", "/api/v4/activities.json", {"vendor_id": VISIBLE}) == 200
    assert rig.own_requests("POST")


# Class 2: retyping, moving or giving away a hidden time entry -------------------------------------

@pytest.mark.parametrize("data", [
    {"type": "ExpenseEntry"}, {"type": "TimeEntry"}, {"matter": {"id": 500}}, {"matter_id": 500},
    {"user": {"id": 2}}, {"user_id": 2}, {"quantity": 1}, {"rounded_quantity": 1}, {"quantity_in_hours": 1},
    {"rounded_quantity_in_hours": 1}, {"total": 5}, {"non_billable_total": 1},
    {"note": "moved", "matter": None},
], ids=lambda d: ",".join(d))
async def test_a_hidden_time_entry_cannot_be_retyped_moved_or_given_away(
    rig: Rig, http: aiohttp.ClientSession, data: dict[str, Any]
) -> None:
    rig.script.default_answer = (200, HIDDEN_ENTRY)
    assert await send(rig, http, "PATCH", "/api/v4/activities/101.json", data) == 403
    assert not rig.own_requests("PATCH"), "the PATCH reached the backend"
    assert rig.own_requests("GET"), "the proxy checked the entry as the backend has it"


async def test_other_edits_of_a_hidden_entry_and_retyping_ones_own_pass(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (200, HIDDEN_ENTRY)
    assert await send(rig, http, "PATCH", "/api/v4/activities/101.json", {"note": "typo"}) == 200
    rig.script.default_answer = (200, {"data": {"id": 101, "type": "TimeEntry", "user": {"id": 2},
                                                "matter": {"id": 501}}})
    assert await send(rig, http, "PATCH", "/api/v4/activities/101.json", {"type": "ExpenseEntry"}) == 200
    assert len(rig.own_requests("PATCH")) == 2


# Class 3: writes that would make a hidden contact visible -----------------------------------------

WIDENING: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v4/relationships.json", {"contact": {"id": HIDDEN}, "matter": {"id": 500}}),
    ("POST", "/api/v4/relationships.json", {"contact_id": HIDDEN, "matter_id": 500}),
    ("PATCH", "/api/v4/relationships/1.json", {"contact": {"id": str(HIDDEN)}}),
    ("PATCH", "/api/v4/relationships/1.json", {"contact_id": HIDDEN}),
    ("POST", "/api/v4/matters.json", {"client": {"id": HIDDEN}, "description": "new"}),
    ("POST", "/api/v4/matters.json", {"client_id": HIDDEN}),
    ("PATCH", "/api/v4/matters/500.json", {"client": {"id": HIDDEN}}),
    ("PATCH", "/api/v4/matters/500.json", {"client_id": str(HIDDEN)}),
    ("PATCH", "/api/v4/matters/500.json", {"relationships": [{"description": "x", "contact": {"id": HIDDEN}}]}),
    ("PATCH", "/api/v4/matters/500.json", {"relationships": [{"description": "x", "contact_id": HIDDEN}]}),
    ("POST", "/api/v4/matters.json",
     {"custom_field_values": [{"custom_field": {"id": 77}, "contact": {"id": HIDDEN}}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": HIDDEN}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": "950"}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": " 0950"}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": "9_50"}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"value": [1, HIDDEN]}]}),
    ("POST", "/api/v4/matters.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": {"id": HIDDEN}}]}),
    ("POST", "/api/v4/matters.json", {"split_invoice_payers": [{"contact_id": HIDDEN, "split_portion": 50}]}),
    ("PATCH", "/api/v4/matters/500.json", {"split_invoice_payers": [{"contact": {"id": HIDDEN}}]}),
    ("PATCH", "/api/v4/matters/500.json", {"matter_bill_recipients": [{"recipient": {"id": HIDDEN}}]}),
    ("PATCH", "/api/v4/matters/500.json", {"matter_bill_recipients": [{"recipient_id": HIDDEN}]}),
]


@pytest.mark.parametrize("method,path,data", WIDENING, ids=[f"{m} {p.split('/')[3]} {orjson.dumps(d).decode()}"
                                                            for m, p, d in WIDENING])
async def test_a_write_that_would_make_a_hidden_contact_visible_is_refused(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, data: dict[str, Any]
) -> None:
    assert await send(rig, http, method, path, data) == 422
    assert not rig.script.forwarded, "a widening write reached the backend"


@pytest.mark.parametrize("method,path,data", [
    ("POST", "/api/v4/relationships.json", {"contact": {"id": VISIBLE}, "matter": {"id": 500}}),
    ("PATCH", "/api/v4/matters/500.json", {"client": {"id": 903}, "description": "renamed"}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": "hello"}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"custom_field": {"id": 77}, "value": "901"}]}),
    ("PATCH", "/api/v4/matters/500.json", {"custom_field_values": [{"id": 4, "_destroy": True}]}),
    ("POST", "/api/v4/matters.json", {"split_invoice_payers": [{"contact_id": VISIBLE, "split_portion": 100}]}),
])
async def test_a_write_naming_only_visible_contacts_is_forwarded(
    rig: Rig, http: aiohttp.ClientSession, method: str, path: str, data: dict[str, Any]
) -> None:
    if method == "PATCH":  # the answer about /matters/500 must be matter 500 (tests/test_reads.py)
        rig.script.default_answer = (200, {"data": {"id": int(path.rsplit("/", 1)[1].removesuffix(".json"))}})
    assert await send(rig, http, method, path, data) == 200
    assert rig.own_requests(method)


@pytest.mark.parametrize("data", [
    {"relationships": [HIDDEN]}, {"relationships": {"contact": {"id": HIDDEN}}}, {"client": HIDDEN},
    {"client_id": "0950"}, {"split_invoice_payers": [{"contact_id": [HIDDEN]}]},
], ids=lambda d: orjson.dumps(d).decode())
async def test_a_malformed_reference_in_a_matter_write_is_a_bad_request(
    rig: Rig, http: aiohttp.ClientSession, data: dict[str, Any]
) -> None:
    assert await send(rig, http, "PATCH", "/api/v4/matters/500.json", data) == 400
    assert not rig.script.forwarded


# Class 8: participants in answers -----------------------------------------------------------------

READ_TYPES = ["person", "Contact ", "CONTACT", "contact", "", "Individual", "user", "User ", "Calendar"]


def hidden_participant(kind: Any) -> dict[str, Any]:
    return {"id": HIDDEN, "type": kind, "name": CANARY}


def stubbed(kind: Any) -> dict[str, Any]:
    return {"id": HIDDEN, "type": kind, "name": "****", "redacted": True}


READS: list[tuple[str, str, Any]] = [
    # (path, key, list?)
    ("/api/v4/tasks/7.json?fields=id,assignee{id,name,type}", "assignee", False),
    ("/api/v4/communications/7.json?fields=id,senders{id,name,type}", "senders", True),
    ("/api/v4/communications/7.json?fields=id,receivers{id,name,type}", "receivers", True),
    ("/api/v4/conversation_messages/7.json?fields=id,sender{id,name,type}", "sender", False),
]


@pytest.mark.parametrize("kind", READ_TYPES)
@pytest.mark.parametrize("path,key,many", READS, ids=[k for _, k, _ in READS])
async def test_an_answer_participant_of_an_unknown_type_is_stubbed(
    rig: Rig, http: aiohttp.ClientSession, path: str, key: str, many: bool, kind: str
) -> None:
    entry = hidden_participant(kind)
    rig.script.default_answer = (200, {"data": {"id": 7, key: [entry] if many else entry}})
    async with http.get(rig.url(path), headers=AUTH) as r:
        raw = await r.read()
    assert r.status == 200, raw
    assert CANARY.encode() not in raw
    got = orjson.loads(raw)["data"][key]
    assert (got[0] if many else got) == stubbed(kind), "the stub keeps the type as the backend sent it"


@pytest.mark.parametrize("kind", ["person", "Contact ", "CONTACT", "User", "Group", "calendar"])
async def test_attendees_of_an_unknown_type_are_stubbed_in_an_index(
    rig: Rig, http: aiohttp.ClientSession, kind: str
) -> None:
    rig.script.default_answer = (200, {"data": [{"id": 7, "attendees": [
        {"id": 5002, "type": "Calendar", "name": "Dana's calendar"}, hidden_participant(kind)]}],
        "meta": {"paging": {}, "records": 1}})
    async with http.get(rig.url("/api/v4/calendar_entries.json?fields=id,attendees{id,name,type}"),
                        headers=AUTH) as r:
        raw = await r.read()
    assert r.status == 200, raw
    attendees = orjson.loads(raw)["data"][0]["attendees"]
    if kind == "User":  # the exact non-contact spelling is left alone
        assert attendees[1] == hidden_participant(kind)
    else:
        assert attendees == [{"id": 5002, "type": "Calendar", "name": "Dana's calendar"}, stubbed(kind)]
        assert CANARY.encode() not in raw


async def test_a_user_participant_and_a_group_grant_are_left_alone(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (200, {"data": {"id": 7, "assignee": hidden_participant("User")}})
    async with http.get(rig.url("/api/v4/tasks/7.json?fields=id,assignee{id,name,type}"), headers=AUTH) as r:
        assert (await r.json())["data"]["assignee"] == hidden_participant("User")
    rig.script.default_answer = (200, {"data": {"id": 7, "access_grants": [hidden_participant("Group")]}})
    async with http.get(rig.url("/api/v4/documents/7.json?fields=id,access_grants{id,name,type}"),
                        headers=AUTH) as r:
        assert (await r.json())["data"]["access_grants"] == [hidden_participant("Group")]


@pytest.mark.parametrize("entry", [{"id": HIDDEN, "name": CANARY}, hidden_participant(None), hidden_participant(7)])
async def test_an_answer_participant_without_a_string_type_is_refused(
    rig: Rig, http: aiohttp.ClientSession, entry: dict[str, Any]
) -> None:
    rig.script.default_answer = (200, {"data": {"id": 7, "assignee": entry}})
    async with http.get(rig.url("/api/v4/tasks/7.json?fields=id,assignee{id,name,type}"), headers=AUTH) as r:
        raw = await r.read()
    assert r.status == 502
    assert CANARY.encode() not in raw


# The policy vocabulary ----------------------------------------------------------------------------

@pytest.mark.parametrize("participants,needle", [
    ("[User, Person]", "Person are contacts"), ('"yes"', "participants: must be"), ("[]", "participants: must be"),
    ("[user]", "participants: must be"),
])
def test_a_participants_list_cannot_name_contacts_or_be_malformed(tmp_path: Path, participants: str,
                                                                  needle: str) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    for source in POLICIES.glob("*.yaml"):
        (policies / source.name).write_text(source.read_text())
    tasks = policies / "tasks.yaml"
    tasks.write_text(tasks.read_text().replace("participants: true", f"participants: {participants}", 1))
    with pytest.raises(ConfigError) as caught:
        load_policies(policies)
    assert needle in str(caught.value)
    assert "tasks.yaml:13" in str(caught.value)


# Sizes that must not crash the checks -------------------------------------------------------------

async def test_an_id_too_long_for_int64_is_a_bad_request(rig: Rig, http: aiohttp.ClientSession) -> None:
    """int() of a 5000-digit string raises ValueError: the check must answer 400, never 500."""
    for data in ({"vendor": {"id": "9" * 5000}}, {"vendor_id": "9" * 5000}, {"vendor": {"id": 2**64}}):
        assert await send(rig, http, "POST", "/api/v4/activities.json", data) == 400
    assert not rig.script.forwarded


async def test_a_huge_custom_field_value_names_no_contact(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (200, {"data": {"id": 500}})
    for value in ("9" * 5000, 10**30):
        data = {"custom_field_values": [{"custom_field": {"id": 77}, "value": value}]}
        assert await send(rig, http, "PATCH", "/api/v4/matters/500.json", data) == 200
    raw = b'{"data": {"custom_field_values": [{"custom_field": {"id": 77}, "value": 1e999999999}]}}'
    async with http.patch(rig.url("/api/v4/matters/500.json"), headers=AUTH, data=raw) as r:
        assert r.status == 200
    assert len(rig.own_requests("PATCH")) == 3


@pytest.mark.parametrize("data,forwarded", [
    ({"responsible_attorney": {"id": 2}}, False),            # matter 501 is attorney 9's: its hours would show
    ({"responsible_attorney_id": "2"}, False),
    ({"responsible_attorney": {"id": 9}, "description": "d"}, True),  # naming another attorney widens nothing
])
async def test_making_oneself_a_matters_responsible_attorney_is_refused(
    rig: Rig, http: aiohttp.ClientSession, data: dict[str, Any], forwarded: bool
) -> None:
    rig.script.default_answer = (200, {"data": {"id": 501}})
    status = await send(rig, http, "PATCH", "/api/v4/matters/501.json", data)
    assert (status, bool(rig.own_requests("PATCH"))) == ((200, True) if forwarded else (403, False))


async def test_naming_oneself_on_a_matter_one_already_answers_for_is_forwarded(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    rig.script.default_answer = (200, {"data": {"id": 500}})
    assert await send(rig, http, "PATCH", "/api/v4/matters/500.json", {"responsible_attorney": {"id": 2}}) == 200
    assert rig.own_requests("PATCH")
