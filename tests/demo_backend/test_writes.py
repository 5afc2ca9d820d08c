"""Writes: references resolved to real objects, data that later reads reflect, matter access, errors."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from demo_backend import Firm

from .conftest import auth

Client = TestClient[Any, Any]


async def send(client: Client, method: str, path: str, data: Any, user: int = 1) -> tuple[int, Any]:
    async with client.request(method, path, headers=auth(user), json={"data": data}) as response:
        return response.status, (await response.json() if response.status not in (204, 304) else None)


async def test_created_contact_has_its_creator_and_shows_in_creator_filter(client: Client) -> None:
    status, body = await send(client, "POST", "/api/v4/contacts.json?fields=id,name,type,creator,primary_email_address",
                              {"first_name": "Nora", "last_name": "Quill", "type": "Person",
                               "email_addresses": [{"address": "nora@quill.example", "name": "Work", "primary": True}]},
                              user=2)
    assert status == 201
    assert body["data"]["name"] == "Nora Quill" and body["data"]["creator"] == {"id": 2}
    assert body["data"]["primary_email_address"] == "nora@quill.example"
    async with client.get("/api/v4/contacts?creator_id=2&fields=id", headers=auth(2)) as response:
        assert body["data"]["id"] in [c["id"] for c in (await response.json())["data"]]


async def test_relationship_post_and_delete_change_later_reads(client: Client, firm: Firm) -> None:
    status, body = await send(client, "POST", "/api/v4/relationships.json?fields=id,contact{id,name,type},matter",
                              {"description": "Witness", "matter": {"id": 20001}, "contact": {"id": 10150}}, user=2)
    assert status == 201 and body["data"]["contact"]["name"] == firm.contacts[10150]["name"]
    rel_id = body["data"]["id"]
    async with client.get("/api/v4/matters/20001/related_contacts?fields=id", headers=auth(2)) as response:
        assert 10150 in [c["id"] for c in (await response.json())["data"]]
    assert rel_id in [r["id"] for r in firm.matters[20001]["relationships"]]
    assert (await send(client, "DELETE", f"/api/v4/relationships/{rel_id}.json", None, user=2))[0] == 204
    assert rel_id not in [r["id"] for r in firm.matters[20001]["relationships"]]


async def test_matter_patch_changes_client_and_custom_field_contact(client: Client) -> None:
    path = "/api/v4/matters/20001?fields=client{id,name},custom_field_values{id,contact}"
    status, body = await send(client, "PATCH", path,
                              {"client": {"id": 10140},
                               "custom_field_values": [{"custom_field": {"id": 240104}, "value": "10141"}]})
    assert status == 200 and body["data"]["client"]["id"] == 10140
    contacts = [v["contact"] for v in body["data"]["custom_field_values"] if v.get("contact")]
    assert {"id": 10141, "type": contacts[-1]["type"]} == contacts[-1]


async def test_writes_on_hidden_matters_are_404(client: Client, firm: Firm) -> None:
    visible = firm.accessible_matters(2) or frozenset()
    hidden = min(set(firm.matters) - visible)
    assert (await send(client, "PATCH", f"/api/v4/matters/{hidden}.json", {"description": "x"}, user=2))[0] == 404
    assert (await send(client, "DELETE", f"/api/v4/matters/{hidden}.json", None, user=2))[0] == 404
    status, _ = await send(client, "POST", "/api/v4/notes.json", {"subject": "x", "matter": {"id": hidden}}, user=2)
    assert status == 404
    assert hidden in firm.matters


async def test_activity_quantity_and_vendor(client: Client, firm: Firm) -> None:
    activity = next(a for a in firm.activities.values() if a["type"] == "TimeEntry")
    status, body = await send(client, "PATCH", f"/api/v4/activities/{activity['id']}?fields=quantity_in_hours,total",
                              {"quantity": 7200})
    assert status == 200 and body["data"]["quantity_in_hours"] == 2.0
    assert body["data"]["total"] == round(2 * activity["price"], 2)
    status, body = await send(client, "POST", "/api/v4/activities.json?fields=type,vendor{id,name,type},user",
                              {"type": "ExpenseEntry", "quantity": 1, "price": 40, "vendor": {"id": 10012},
                               "matter": {"id": 20001}, "user": {"id": 2}})
    assert status == 201 and body["data"]["vendor"]["name"] == firm.contacts[10012]["name"]
    assert body["data"]["user"] == {"id": 2}


async def test_participants_are_resolved(client: Client, firm: Firm) -> None:
    status, body = await send(client, "POST", "/api/v4/tasks.json?fields=assignee{id,type,name}",
                              {"name": "Call", "assignee": {"id": 10020, "type": "Contact"}})
    assert status == 201
    assert body["data"]["assignee"] == {"id": 10020, "type": firm.contacts[10020]["type"],
                                        "name": firm.contacts[10020]["name"]}
    status, body = await send(client, "POST", "/api/v4/calendar_entries.json?fields=id,attendees{id,type,name}",
                              {"summary": "Depo", "attendees": [{"id": 10020, "type": "Contact"},
                                                                {"id": 5002, "type": "Calendar"}]})
    assert status == 201 and [a["type"] for a in body["data"]["attendees"]] == ["Contact", "Calendar"]
    status, body = await send(client, "POST", "/api/v4/conversation_messages.json?fields=sender,receivers{id,name}",
                              {"body": "hi", "conversation": {"id": 120001},
                               "receivers": [{"id": 10021, "type": "Contact"}]})
    assert status == 201 and body["data"]["sender"] == {"id": 1, "type": "User"}
    assert body["data"]["receivers"] == [{"id": 10021, "name": firm.contacts[10021]["name"]}]


async def test_personal_injury_writes(client: Client, firm: Firm) -> None:
    record_id = min(firm.medical_records)
    status, body = await send(client, "PATCH", f"/api/v4/medical_records/{record_id}.json?fields=id,end_date",
                              {"end_date": "2024-05-01"})
    assert status == 200 and body["data"] == {"id": record_id, "end_date": "2024-05-01"}
    status, body = await send(client, "POST", "/api/v4/medical_records_details.json?fields=id,medical_bills{name}",
                              {"description": "ER", "matter": {"id": 20001}, "medical_provider": {"id": 10012},
                               "medical_bills": [{"name": "ER invoice", "amount": 900.0}]})
    assert status == 201 and body["data"]["medical_bills"] == [{"name": "ER invoice"}]


async def test_bad_bodies(client: Client) -> None:
    async with client.post("/api/v4/contacts.json", headers=auth(1), data=b"{not json") as response:
        assert response.status == 400 and (await response.json())["error"]["type"] == "ArgumentError"
    status, body = await send(client, "POST", "/api/v4/tasks.json", {"assignee": {"id": 1, "type": "Robot"}})
    assert status == 422 and body["error"]["type"] == "UnprocessableEntity"


async def test_contact_rename(client: Client, firm: Firm) -> None:
    person = next(c for c in firm.contacts.values() if c["type"] == "Person" and c["id"] > 10008)
    status, body = await send(client, "PATCH", f"/api/v4/contacts/{person['id']}?fields=name", {"name": "Zed Q. Zulu"})
    assert status == 200 and body["data"]["name"] == "Zed Q. Zulu"
    status, body = await send(client, "PATCH", f"/api/v4/contacts/{person['id']}?fields=name", {"last_name": "Moe"})
    assert body["data"]["name"] == " ".join(p for p in (person["first_name"], person["middle_name"], "Moe") if p)
