"""API conventions over real sockets: auth, `.json` parity, fields, paging, filters, matter access,
ETags, gzip and the X-API-VERSION echo."""

from __future__ import annotations

import gzip
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from demo_backend import Firm

from .conftest import auth

Client = TestClient[Any, Any]


async def get_json(client: Client, path: str, user: int = 1, **headers: str) -> tuple[int, Any]:
    async with client.get(path, headers={**auth(user), **headers}) as response:
        return response.status, await response.json()


async def test_missing_or_unknown_token_is_401(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer token-999"}, {"Authorization": "Bearer nope"}):
        async with client.get("/api/v4/users/who_am_i.json", headers=headers) as response:
            assert response.status == 401
            assert (await response.json())["error"]["type"] == "Unauthorized"


async def test_who_am_i(client: Client) -> None:
    status, body = await get_json(client, "/api/v4/users/who_am_i.json?fields=id,name,email,roles", user=2)
    assert status == 200
    assert body["data"] == {"id": 2, "name": "Rita Restricted", "email": "rita.restricted@firm.example",
                            "roles": ["Attorney"]}


async def test_json_suffix_parity(client: Client) -> None:
    for path in ("/api/v4/contacts", "/api/v4/contacts/10005", "/api/v4/matters/20001/contacts"):
        plain = await get_json(client, path + "?fields=id,name")
        suffixed = await get_json(client, path + ".json?fields=id,name")
        assert plain == suffixed and plain[0] == 200


async def test_unknown_path_and_method(client: Client) -> None:
    status, body = await get_json(client, "/api/v4/widgets.json")
    assert status == 404 and body["error"]["type"] == "NotFound"
    async with client.post("/api/v4/bills.json", headers=auth(1), json={"data": {}}) as response:
        assert response.status == 405 and response.headers["Allow"] == "GET"
        assert (await response.json())["error"]["type"] == "MethodNotAllowed"


async def test_default_fields_and_nested_defaults(client: Client, firm: Firm) -> None:
    status, body = await get_json(client, "/api/v4/matters/20001.json")
    assert status == 200 and body["data"] == {"id": 20001, "etag": firm.matters[20001]["etag"]}
    status, body = await get_json(client, "/api/v4/communications/60001?fields=senders,receivers,matter")
    for participant in body["data"]["senders"] + body["data"]["receivers"]:
        assert set(participant) == {"id", "type"}
    assert set(body["data"]["matter"] or {"id": 0}) == {"id"}


async def test_one_brace_level_and_400_on_nested_braces(client: Client) -> None:
    status, body = await get_json(client, "/api/v4/matters.json?fields=id,client{id,name,type}&limit=1")
    assert status == 200 and set(body["data"][0]["client"]) == {"id", "name", "type"}
    status, body = await get_json(client, "/api/v4/matters.json?fields=id,client{id,company{id}}")
    assert status == 400 and body["error"]["type"] == "ArgumentError"


async def test_paging_walk_collects_every_record_once(client: Client, firm: Firm) -> None:
    url: str | None = str(client.make_url("/api/v4/activities.json?fields=id&limit=37&order=id(asc)"))
    seen: list[int] = []
    pages = 0
    while url is not None:
        async with client.session.get(url, headers=auth(1)) as response:
            body = await response.json()
        assert body["meta"]["records"] == len(firm.activities)
        assert len(body["data"]) <= 37
        if pages:
            assert "previous" in body["meta"]["paging"]
        seen += [item["id"] for item in body["data"]]
        url = body["meta"]["paging"].get("next")
        if url is not None:
            parsed = URL(url)
            assert parsed.is_absolute() and parsed.port == client.port
            assert parsed.query["fields"] == "id" and parsed.query["limit"] == "37"
        pages += 1
    assert seen == sorted(firm.activities) and pages == -(-len(firm.activities) // 37)


async def test_descending_order_and_limit_bounds(client: Client, firm: Firm) -> None:
    _, body = await get_json(client, "/api/v4/matters?order=id(desc)&limit=2")
    assert [m["id"] for m in body["data"]] == sorted(firm.matters, reverse=True)[:2]
    for limit in ("0", "201", "x"):
        status, body = await get_json(client, f"/api/v4/matters?limit={limit}")
        assert status == 400 and body["error"]["type"] == "ArgumentError"


async def test_filters(client: Client, firm: Firm) -> None:
    _, body = await get_json(client, "/api/v4/contacts.json?creator_id=2&fields=id,creator")
    expected = [c["id"] for c in firm.contacts.values() if c["creator"]["id"] == 2]
    assert [c["id"] for c in body["data"]] == expected and body["meta"]["records"] == len(expected)
    assert all(c["creator"]["id"] == 2 for c in body["data"])
    _, body = await get_json(client, "/api/v4/activities.json?type=ExpenseEntry&user_id=4&fields=id,type,user")
    assert body["data"] and all(a["type"] == "ExpenseEntry" and a["user"]["id"] == 4 for a in body["data"])
    _, body = await get_json(client, "/api/v4/relationships.json?matter_id=20001&fields=id,matter")
    assert all(r["matter"]["id"] == 20001 for r in body["data"])
    _, body = await get_json(client, "/api/v4/contacts.json?ids[]=10003&ids[]=10007")
    assert [c["id"] for c in body["data"]] == [10003, 10007]


async def test_matter_access(client: Client, firm: Firm) -> None:
    _, everyone = await get_json(client, "/api/v4/matters.json", user=1)
    _, rita = await get_json(client, "/api/v4/matters.json", user=2)
    visible = firm.accessible_matters(2)
    assert visible is not None
    assert rita["meta"]["records"] == len(visible) < everyone["meta"]["records"] == len(firm.matters)
    hidden = min(set(firm.matters) - visible)
    assert (await get_json(client, f"/api/v4/matters/{hidden}.json", user=2))[0] == 404
    hidden_activity = next(a for a in firm.activities.values() if a["matter"] and a["matter"]["id"] == hidden)
    assert (await get_json(client, f"/api/v4/activities/{hidden_activity['id']}", user=2))[0] == 404
    _, notes = await get_json(client, "/api/v4/notes.json?fields=id,matter", user=2)
    assert any(n["matter"] is None for n in notes["data"])
    assert all(n["matter"] is None or n["matter"]["id"] in visible for n in notes["data"])


async def test_etag_304_and_if_match_412(client: Client) -> None:
    async with client.get("/api/v4/contacts/10010.json", headers=auth(1)) as response:
        etag = response.headers["ETag"]
    async with client.get("/api/v4/contacts/10010.json", headers={**auth(1), "If-None-Match": etag}) as response:
        assert response.status == 304 and await response.read() == b""
    async with client.patch("/api/v4/contacts/10010.json", headers={**auth(1), "If-Match": '"stale"'},
                            json={"data": {"title": "Dr"}}) as response:
        assert response.status == 412
        assert (await response.json())["error"]["type"] == "PreconditionFailed"
    async with client.patch("/api/v4/contacts/10010.json", headers={**auth(1), "If-Match": etag},
                            json={"data": {"title": "Dr"}}) as response:
        assert response.status == 200 and response.headers["ETag"] != etag


async def test_gzip_only_when_asked(client: Client) -> None:
    path = "/api/v4/activities.json?fields=id,note,matter{id,display_number}&limit=50"
    async with client.get(path, headers={**auth(1), "Accept-Encoding": "gzip"}, auto_decompress=False) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert len(gzip.decompress(await resp.read())) > 1024
    async with client.get(path, headers={**auth(1), "Accept-Encoding": "identity"}) as resp:
        assert "Content-Encoding" not in resp.headers


async def test_api_version_echo(client: Client) -> None:
    async with client.get("/api/v4/users/who_am_i", headers={**auth(1), "X-API-VERSION": "4.0.5"}) as response:
        assert response.headers["X-API-VERSION"] == "4.0.5"
    async with client.get("/api/v4/users/who_am_i", headers=auth(1)) as response:
        assert response.headers["X-API-VERSION"] == "4.0.9"
