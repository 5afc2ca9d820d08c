"""Every fault kind once, rule matching and counting down, over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient

from demo_backend import FAULTS_KEY, Fault, Faults

from .conftest import auth

Client = TestClient[Any, Any]
PATH = "/api/v4/activities.json?fields=id,note,matter{id,display_number}&limit=40"


def inject(client: Client, *faults: Fault) -> None:
    client.app[FAULTS_KEY].replace(faults)


async def test_delay(client: Client) -> None:
    inject(client, Fault("delay", "/api/v4/activities", arg=0.2))
    started = time.monotonic()
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.2


async def test_hang(client: Client) -> None:
    inject(client, Fault("hang", "/api/v4/"))
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(PATH, headers=auth(1), timeout=aiohttp.ClientTimeout(total=0.3)):
            pass


@pytest.mark.parametrize(("fault", "status"), [(Fault("status500"), 500), (Fault("status", arg=429), 429)])
async def test_error_statuses(client: Client, fault: Fault, status: int) -> None:
    inject(client, fault)
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.status == status
        assert set((await response.json())["error"]) == {"type", "message"}


async def test_malformed(client: Client) -> None:
    inject(client, Fault("malformed"))
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.status == 200 and response.content_type == "application/json"
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(await response.read())


@pytest.mark.parametrize("kind", ["truncate", "close_chunked"])
async def test_cut_off_bodies(client: Client, kind: str) -> None:
    inject(client, Fault(kind))
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.status == 200
        if kind == "truncate":
            assert int(response.headers["Content-Length"]) > 100
        else:
            assert response.headers["Transfer-Encoding"] == "chunked"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_drop(client: Client) -> None:
    inject(client, Fault("drop", method="POST"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with client.post("/api/v4/notes.json", headers=auth(1), json={"data": {"subject": "x"}}):
            pass


async def test_gzip_unrequested(client: Client) -> None:
    inject(client, Fault("gzip_unrequested"))
    async with client.get(PATH, headers={**auth(1), "Accept-Encoding": "identity"}, auto_decompress=False) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert orjson.loads(gzip.decompress(await resp.read()))["data"]


async def test_html_and_wrong_content_type(client: Client) -> None:
    async with client.get(PATH, headers=auth(1)) as response:
        real = await response.text()
    inject(client, Fault("html", times=1), Fault("wrong_content_type", times=1))
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert real in await response.text()
    async with client.get(PATH, headers=auth(1)) as response:
        assert response.content_type == "text/plain" and await response.text() == real


async def test_redirect(client: Client) -> None:
    inject(client, Fault("redirect"))
    async with client.get(PATH, headers=auth(1), allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == f"http://127.0.0.1:{client.port}/api/v4/elsewhere"


async def test_rules_match_prefix_and_method_and_count_down(client: Client) -> None:
    inject(client, Fault("status500", "/api/v4/matters", method="GET", times=2))
    statuses = []
    for path in ("/api/v4/contacts", "/api/v4/matters", "/api/v4/matters.json", "/api/v4/matters"):
        async with client.get(path, headers=auth(1)) as response:
            statuses.append(response.status)
    assert statuses == [200, 500, 500, 200]
    assert client.app[FAULTS_KEY].rules == []


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
    faults = Faults([Fault("delay", times=1)])
    assert faults.take("GET", "/x") is not None and faults.take("GET", "/x") is None
