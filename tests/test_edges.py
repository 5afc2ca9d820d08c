"""Edges of the policed pipeline (issue 9, classes 11, 12, 14, 15), over real sockets.

11: headers that describe the backend's body never ride on a policed answer (allowlist).
12: ordering or filtering by a field hidden from the caller is refused before the backend.
14: a missing or malformed Host never builds a wrong link nor a 500.
15: dry-run passes on a backend answer it cannot examine, and logs it as undecidable.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# User 2 is restricted by every rule; user 1 sees everything (conftest's settings_file).
OWN_ENTRY = {"id": 1, "type": "TimeEntry", "user": {"id": 2}, "matter": {"id": 500}, "date": "2024-01-02",
             "quantity": 3600.0, "price": 250.0, "total": 250.0, "vendor": None}
ACTIVITIES = {"data": [OWN_ENTRY], "meta": {"paging": {}, "records": 43}}
ONE_ACTIVITY = {"data": OWN_ENTRY}


@dataclass
class Rig:
    script: Script
    backend: Any
    proxy: RunningProxy

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    def as_caller(self, caller: int) -> dict[str, str]:
        self.script.caller = {"id": caller, "roles": []}
        return {"Authorization": f"Bearer token-{caller}"}


async def _rig(settings_file: Path, **options: Any) -> Rig:
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900, "responsible_attorney": 7}],
                    default_answer=(200, ACTIVITIES))
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file, **options)
    return Rig(script, backend, proxy)


@pytest.fixture
async def rig(settings_file: Path) -> AsyncIterator[Rig]:
    r = await _rig(settings_file)
    yield r
    await r.proxy.close()
    await r.backend.close()


@pytest.fixture
async def dry(settings_file: Path) -> AsyncIterator[Rig]:
    r = await _rig(settings_file, mode="dry-run")
    yield r
    await r.proxy.close()
    await r.backend.close()


async def raw_request(rig: Rig, data: bytes) -> bytes:
    """Exact bytes to the proxy, read to the end (HTTP/1.0 answers close the connection)."""
    reader, writer = await asyncio.open_connection(rig.proxy.url.host, rig.proxy.url.port)
    writer.write(data)
    await writer.drain()
    try:
        chunks = []
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


# ---------------------------------------------------------------------------------------------
# 11. Headers that describe the unredacted body

DESCRIBING = {
    "Content-Digest": "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    "Repr-Digest": "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    "Digest": "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "Content-MD5": "Q2hlY2sgSW50ZWdyaXR5IQ==",
    "X-Total-Count": "43", "X-Records": "43", "X-Total": "43", "X-Hidden-Records": "37",
    "ETag": '"backend-etag"', "Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT", "Set-Cookie": "s=abc",
    "X-Backend-Note": "anything a newer backend adds",
}
PASSING = {"X-API-VERSION": "4.0.9", "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49",
           "X-RateLimit-Reset": "1700000000", "Deprecation": "true", "Sunset": "Wed, 01 Jan 2031 00:00:00 GMT"}


def _with_headers(doc: Any, streamed: bool) -> Handler:
    body = orjson.dumps(doc)

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {**DESCRIBING, **PASSING, "Content-Type": "application/json"}
        if not streamed:
            return web.Response(body=body, headers=headers)
        out = web.StreamResponse(headers=headers)  # chunked, no length: the index streams
        await out.prepare(request)
        await out.write(body[:20])
        await out.write(body[20:])
        await out.write_eof()
        return out
    return handler


@pytest.mark.parametrize("caller", [2, 1], ids=["restricted", "all-visible"])
@pytest.mark.parametrize("target,doc,streamed", [
    ("/api/v4/activities.json?fields=id,quantity,total", ACTIVITIES, False),
    ("/api/v4/activities.json?fields=id,quantity,total", ACTIVITIES, True),
    ("/api/v4/activities/1.json?fields=id,quantity,total", ONE_ACTIVITY, False),
], ids=["buffered index", "streamed index", "show"])
async def test_headers_describing_the_backends_body_are_dropped(
    rig: Rig, http: aiohttp.ClientSession, caller: int, target: str, doc: Any, streamed: bool
) -> None:
    rig.script.fault = _with_headers(doc, streamed)
    async with http.get(rig.url(target), headers=rig.as_caller(caller)) as r:
        body = await r.read()
        assert r.status == 200, body
        for name in DESCRIBING:
            if name == "ETag":
                assert r.headers.get("ETag") != DESCRIBING["ETag"]
            else:
                assert name not in r.headers, name
        for name, value in PASSING.items():
            assert r.headers[name] == value
        assert r.headers["Cache-Control"] == "private"


async def test_headers_on_a_backend_error_are_allowlisted_too(rig: Rig, http: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=429, body=b'{"error":{"type":"RateLimited","message":"slow down"}}',
                            headers={**DESCRIBING, "Retry-After": "30", "Content-Type": "application/json"})

    rig.script.fault = handler
    async with http.get(rig.url("/api/v4/activities.json"), headers=rig.as_caller(2)) as r:
        assert r.status == 429 and r.headers["Retry-After"] == "30"
        assert not set(DESCRIBING) - {"ETag"} & set(r.headers)


async def test_unpoliced_answers_keep_the_backends_headers(rig: Rig, http: aiohttp.ClientSession) -> None:
    """The relay is transparent: a body it passes as it came keeps the headers describing it. A JSON
    answer's paging links may move onto the proxy's origin as it streams (relay_links), so the
    digests of its exact bytes go; what counts records still holds and passes."""
    body = b"\x00binary"

    async def binary(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={**DESCRIBING, "Content-Type": "application/octet-stream"})

    rig.script.fault = binary
    async with http.get(rig.url("/unpoliced/thing"), headers=rig.as_caller(1)) as r:
        assert r.status == 200 and await r.read() == body
        for name in ("Content-Digest", "Repr-Digest", "X-Total-Count", "ETag"):
            assert r.headers[name] == DESCRIBING[name]
    rig.script.fault = _with_headers({"x": 1}, streamed=False)
    async with http.get(rig.url("/unpoliced/thing"), headers=rig.as_caller(1)) as r:
        assert r.status == 200
        assert r.headers["X-Total-Count"] == DESCRIBING["X-Total-Count"]
        assert not {"Content-Digest", "Repr-Digest", "ETag"} & set(r.headers)


# ---------------------------------------------------------------------------------------------
# 12. Ordering or filtering by a hidden value

REFUSED_FOR_RESTRICTED = [
    ("/api/v4/activities.json?order=quantity(asc)", "activity_hours_visibility"),
    ("/api/v4/activities.json?order=total(desc)", "activity_hours_visibility"),
    ("/api/v4/activities.json?order=non_billable_total(asc)", "activity_hours_visibility"),
    ("/api/v4/activities.json?order=Quantity(ASC)", "activity_hours_visibility"),
    ("/api/v4/activities.json?order=date(asc),quantity(asc)", "activity_hours_visibility"),
    ("/api/v4/activities.json?order=price(asc)", "billing_rate_visibility"),
    ("/api/v4/activities.json?order=vendor.name(asc)", "contacts_visibility"),
    ("/api/v4/activities.json?total=250", "activity_hours_visibility"),
    ("/api/v4/activities.json?quantity[gt]=3000", "activity_hours_visibility"),
    ("/api/v4/activities.json?price=250", "billing_rate_visibility"),
    ("/api/v4/bills.json?order=client_name(asc)", "contacts_visibility"),
    ("/api/v4/calendar_entries.json?order=time_entries.quantity(asc)", "activity_hours_visibility"),
]


@pytest.mark.parametrize("target,rule", REFUSED_FOR_RESTRICTED)
async def test_ordering_or_filtering_by_a_hidden_field_is_refused_before_the_backend(
    rig: Rig, http: aiohttp.ClientSession, target: str, rule: str
) -> None:
    async with http.get(rig.url(target), headers=rig.as_caller(2)) as r:
        body = await r.read()
        assert r.status == 400, body
    error = orjson.loads(body)["error"]
    assert error["type"] == "BadRequest" and error["message"].startswith(rule)
    assert b"250" not in body and b"Smith" not in body
    assert not rig.script.forwarded


@pytest.mark.parametrize("target", [t for t, _ in REFUSED_FOR_RESTRICTED[:8]])
async def test_an_all_visible_caller_may_order_by_anything(rig: Rig, http: aiohttp.ClientSession, target: str) -> None:
    async with http.get(rig.url(target), headers=rig.as_caller(1)) as r:
        assert r.status == 200
    assert rig.script.forwarded[-1].path_qs.split("?", 1)[1] in target  # forwarded as asked


@pytest.mark.parametrize("target", [
    "/api/v4/activities.json?order=date(asc)", "/api/v4/activities.json?order=user.name(desc)",
    "/api/v4/activities.json?vendor_id=900&matter_id=500", "/api/v4/activities.json?query=meeting",
    "/api/v4/contacts.json?order=name(asc)",
    # A matter's client is visible to whoever sees the matter (4.0.9): its name ranks nothing hidden.
    "/api/v4/matters.json?order=client.name(asc)", "/api/v4/matters.json?query=Smith",
])
async def test_a_restricted_caller_may_order_and_filter_by_what_it_sees(
    rig: Rig, http: aiohttp.ClientSession, target: str
) -> None:
    if "contacts" in target:
        rig.script.default_answer = (200, {"data": [{"id": 900, "name": "Visible"}], "meta": {"records": 1}})
    async with http.get(rig.url(target), headers=rig.as_caller(2)) as r:
        assert r.status == 200, await r.read()
    assert len(rig.script.forwarded) == 1


async def test_hours_only_restriction_still_allows_ordering_by_price(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    from tests.conftest import ALL, write_settings

    settings = write_settings(tmp_path, {2: {**ALL, "activity_hours_visibility": "own_and_responsible_attorney"}})
    r = await _rig(settings)
    try:
        async with http.get(r.url("/api/v4/activities.json?order=price(asc)"), headers=r.as_caller(2)) as resp:
            assert resp.status == 200
        async with http.get(r.url("/api/v4/activities.json?order=total(asc)"), headers=r.as_caller(2)) as resp:
            assert resp.status == 400
    finally:
        await r.proxy.close()
        await r.backend.close()


async def test_dry_run_logs_a_hidden_ordering_and_forwards_it(dry: Rig, http: aiohttp.ClientSession) -> None:
    async with http.get(dry.url("/api/v4/activities.json?order=quantity(asc)"), headers=dry.as_caller(2)) as r:
        assert r.status == 200
    assert "order=quantity(asc)" in dry.script.forwarded[-1].path_qs
    blocked = [json.loads(line) for line in dry.proxy.log_lines() if '"event":"blocked"' in line]
    assert [(b["rule"], b["outcome"]) for b in blocked] == [("activity_hours_visibility", "would_refuse")]
    assert [(b["route"], b["method"], b["user_id"]) for b in blocked] == [("/activities", "GET", 2)]
    count = dry.proxy.services.metrics.registry.get_sample_value(
        "redaction_proxy_blocked_total",
        {"rule": "activity_hours_visibility", "status": "400", "mode": "dry-run", "route": "/activities"})
    assert count == 1


# ---------------------------------------------------------------------------------------------
# 14. Odd Host headers

async def _paged(request: web.Request) -> web.StreamResponse:
    """An index whose next link, like the backend's own, points at the backend."""
    next_link = f"http://{request.host}/api/v4/contacts.json?page_token=abc&limit=1"
    return web.json_response({"data": [{"id": 900, "name": "Visible"}],
                              "meta": {"paging": {"next": next_link}, "records": 2}})


async def test_http_1_0_without_host_gets_links_on_the_proxys_own_address(rig: Rig) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _paged(request) if "contacts" in request.path else web.Response(
            status=303, headers={"Location": f"http://{request.host}/api/v4/elsewhere.json"})

    rig.script.fault = handler
    rig.as_caller(1)
    origin = f"http://{rig.proxy.url.host}:{rig.proxy.url.port}"
    raw = await raw_request(rig, b"GET /api/v4/contacts.json?fields=id,name HTTP/1.0\r\n"
                                 b"Authorization: Bearer token-1\r\n\r\n")
    assert status_of(raw) == 200, raw[:300]
    assert orjson.loads(body_of(raw))["meta"]["paging"]["next"] == (
        f"{origin}/api/v4/contacts.json?fields=id,name&page_token=abc&limit=1")
    raw = await raw_request(rig, b"GET /unpoliced/x HTTP/1.0\r\nAuthorization: Bearer token-1\r\n\r\n")
    assert status_of(raw) == 303 and f"Location: {origin}/api/v4/elsewhere.json".encode() in raw


async def test_without_host_a_configured_public_origin_wins(settings_file: Path) -> None:
    r = await _rig(settings_file, public_origin="https://api.firm.example")
    try:
        r.script.fault = _paged
        r.as_caller(1)
        raw = await raw_request(r, b"GET /api/v4/contacts.json HTTP/1.0\r\nAuthorization: Bearer token-1\r\n\r\n")
        assert status_of(raw) == 200
        assert orjson.loads(body_of(raw))["meta"]["paging"]["next"].startswith(
            "https://api.firm.example/api/v4/contacts.json?")
    finally:
        await r.proxy.close()
        await r.backend.close()


BAD_HOSTS = ["x:abc", "x:0", "x:65536", "x:99999999", "x:-1", "user@x", "user:pw@x:80", "x y", "x:80:80",
             "[::1", "x/y", "", "x:", "x,y", "x\\y", "*"]


@pytest.mark.parametrize("host", BAD_HOSTS)
@pytest.mark.parametrize("request_line,body", [
    ("GET /api/v4/activities.json", b""),
    ("GET /unpoliced/x", b""),
    ("PATCH /api/v4/activities/1.json", b'{"data":{"note":"n"}}'),
], ids=["policed", "relayed", "policed write"])
async def test_a_malformed_host_is_400_and_nothing_reaches_the_backend(
    rig: Rig, host: str, request_line: str, body: bytes
) -> None:
    head = f"{request_line} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer token-1\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    raw = await raw_request(rig, (head + "\r\n").encode() + body)
    assert status_of(raw) == 400, raw[:300]
    assert not rig.script.received


async def test_http_1_1_without_host_is_400(rig: Rig) -> None:
    raw = await raw_request(rig, b"GET /api/v4/activities.json HTTP/1.1\r\nAuthorization: Bearer token-1\r\n"
                                 b"Connection: close\r\n\r\n")
    assert status_of(raw) == 400
    assert not rig.script.received


@pytest.mark.parametrize("host", ["proxy.firm.example:8080", "127.0.0.1", "[::1]:8443", "api_gw:80", "x:65535"])
async def test_a_well_formed_host_names_the_links(rig: Rig, host: str) -> None:
    rig.script.fault = _paged
    rig.as_caller(1)
    raw = await raw_request(rig, f"GET /api/v4/contacts.json HTTP/1.1\r\nHost: {host}\r\n"
                                 f"Authorization: Bearer token-1\r\nConnection: close\r\n\r\n".encode())
    assert status_of(raw) == 200, raw[:300]
    link = orjson.loads(body_of(raw))["meta"]["paging"]["next"]
    assert link.startswith(f"http://{host.removesuffix(':80')}/api/v4/contacts.json?")


# ---------------------------------------------------------------------------------------------
# 15. Dry-run never breaks traffic, not even on an answer it cannot examine

INDEX_BYTES = orjson.dumps({"data": [{"id": 950, "name": "Hidden Name"}], "meta": {"records": 1}})


def _answer(status: int, body: bytes, content_type: str, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers={"Content-Type": content_type, **headers})
    return handler


async def _chunked_broken(request: web.Request) -> web.StreamResponse:
    """Chunked (so it streams): a good record, then bytes no JSON parser accepts, then more."""
    out = web.StreamResponse(headers={"Content-Type": "application/json"})
    await out.prepare(request)
    await out.write(b'{"data":[{"id":900,"name":"Visible"},')
    await asyncio.sleep(0.05)
    await out.write(b"{oops" + b"x" * 100_000)
    await out.write(b"]}")
    await out.write_eof()
    return out


UNEXAMINABLE: dict[str, tuple[Handler, int, bytes]] = {
    "wrong content type": (_answer(200, INDEX_BYTES, "text/plain"), 200, INDEX_BYTES),
    "html": (_answer(200, b"<html>Hidden Name</html>", "text/html"), 200, b"<html>Hidden Name</html>"),
    "unrequested gzip": (_answer(200, gzip.compress(INDEX_BYTES), "application/json", **{"Content-Encoding": "gzip"}),
                         200, INDEX_BYTES),
    "invalid json": (_answer(200, b'{"data": [{"id": 950,', "application/json"), 200, b'{"data": [{"id": 950,'),
    "not an index": (_answer(200, b'[1,2,3]', "application/json"), 200, b"[1,2,3]"),
    "206": (_answer(206, INDEX_BYTES, "application/json", **{"Content-Range": "bytes 0-10/99"}), 206, INDEX_BYTES),
    "streamed, malformed": (_chunked_broken, 200,
                            b'{"data":[{"id":900,"name":"Visible"},{oops' + b"x" * 100_000 + b"]}"),
}


@pytest.mark.parametrize("target", ["/api/v4/contacts.json?fields=id,name", "/api/v4/activities/1.json"],
                         ids=["index", "show"])
@pytest.mark.parametrize("name", list(UNEXAMINABLE))
async def test_dry_run_passes_on_what_it_cannot_examine_and_logs_it_undecidable(
    dry: Rig, http: aiohttp.ClientSession, name: str, target: str
) -> None:
    handler, status, expected = UNEXAMINABLE[name]
    dry.script.fault = handler
    async with http.get(dry.url(target), headers=dry.as_caller(2)) as r:
        body = await r.read()
        assert r.status == status, body[:300]
        assert body == expected
    lines = [json.loads(line) for line in dry.proxy.log_lines() if '"event":"request"' in line]
    assert lines[-1]["undecidable"] and lines[-1]["status"] == status
    route = "/contacts" if "contacts" in target else "/activities/{id}"
    count = dry.proxy.services.metrics.registry.get_sample_value(
        "redaction_proxy_undecidable_total", {"route": route, "mode": "dry-run"})
    assert count == 1
    assert "Hidden Name" not in dry.proxy.logs.getvalue()


@pytest.mark.parametrize("name", ["wrong content type", "unrequested gzip", "invalid json", "206",
                                  "streamed, malformed"])
async def test_enforce_still_refuses_what_it_cannot_examine(rig: Rig, http: aiohttp.ClientSession, name: str) -> None:
    rig.script.fault = UNEXAMINABLE[name][0]
    async with http.get(rig.url("/api/v4/contacts.json?fields=id,name"), headers=rig.as_caller(2)) as r:
        body = await r.read()
        assert r.status == 502
    assert b"Hidden Name" not in body


async def test_dry_run_head_of_an_unexaminable_answer_has_no_body(dry: Rig) -> None:
    dry.script.fault = UNEXAMINABLE["wrong content type"][0]
    dry.as_caller(2)
    raw = await raw_request(dry, b"HEAD /api/v4/activities/1.json HTTP/1.1\r\nHost: x\r\n"
                                 b"Authorization: Bearer token-2\r\nConnection: close\r\n\r\n")
    assert status_of(raw) == 200 and body_of(raw) == b""
