"""Test and benchmark hooks: request recording, the /_demo control surface, synthetic big bodies."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from demo_backend import REQUESTS_KEY, RecordedRequest

from .conftest import auth

Client = TestClient[Any, Any]


async def test_requests_are_recorded_raw_before_faults(client: Client) -> None:
    async with client.put("/_demo/faults", json=[{"kind": "status500", "path_prefix": "/api/v4/notes"}]):
        pass
    async with client.post("/api/v4/notes.json?fields=id,%20subject", headers=auth(2), data=b'{"data":{}}'):
        pass
    recorded = client.app[REQUESTS_KEY]
    assert len(recorded) == 1 and isinstance(recorded[0], RecordedRequest)
    assert recorded[0].method == "POST" and recorded[0].path_qs == "/api/v4/notes.json?fields=id,%20subject"
    assert ("Authorization", "Bearer token-2") in recorded[0].headers and recorded[0].body == b'{"data":{}}'


async def test_control_surface(client: Client) -> None:
    async with client.get("/_demo/health") as response:
        assert (await response.json())["status"] == "ok"
    async with client.put("/_demo/faults", json=[{"kind": "status", "arg": 503, "times": 1}]) as response:
        assert response.status == 200
    async with client.get("/api/v4/users/who_am_i", headers=auth(1)) as response:
        assert response.status == 503
    async with client.get("/api/v4/users/who_am_i", headers=auth(1)) as response:
        assert response.status == 200
    async with client.get("/_demo/requests") as response:
        listed = await response.json()
    assert [r["path_qs"] for r in listed] == ["/api/v4/users/who_am_i"] * 2
    assert ["Authorization", "Bearer token-1"] in listed[0]["headers"] and listed[0]["body"] == ""
    async with client.delete("/_demo/requests") as response:
        assert response.status == 204
    assert client.app[REQUESTS_KEY] == []
    async with client.put("/_demo/faults", json=[{"kind": "nope"}]) as response:
        assert response.status == 400


async def test_synthetic_activities_stream(client: Client) -> None:
    headers = {**auth(1), "X-Demo-Synthetic-Records": "5000"}
    async with client.get("/api/v4/activities.json?fields=id,type,user,quantity", headers=headers) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        body = orjson.loads(await response.read())
    assert len(body["data"]) == body["meta"]["records"] == 5000 and body["meta"]["paging"] == {}
    assert {tuple(r) for r in body["data"]} == {("id", "type", "quantity", "user")}
    assert {r["user"]["id"] for r in body["data"]} == set(range(1, 9))
    assert len({r["id"] for r in body["data"]}) == 5000


async def test_synthetic_contacts_and_blob(client: Client) -> None:
    headers = {**auth(2), "X-Demo-Synthetic-Records": "300"}
    async with client.get("/api/v4/contacts?fields=id,name,type", headers=headers) as response:
        body = orjson.loads(await response.read())
    assert len(body["data"]) == 300 and body["data"][0]["type"] == "Person"
    async with client.get("/_demo/blob?bytes=200001") as response:
        assert response.content_type == "application/octet-stream"
        assert len(await response.read()) == 200001
