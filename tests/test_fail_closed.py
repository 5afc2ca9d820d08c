"""Fail closed on policed endpoints: bad requests get a clear 4xx and the backend nothing; backend
faults get 502/504 with a generic body and never the backend's bytes (security-checklist B-I)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

CANARY = "CANARY-Zq7x"
CONTACTS = {"data": [{"id": 900, "name": "Visible Client"}, {"id": 950, "name": CANARY}],
            "meta": {"paging": {}, "records": 2}}
AUTH = {"Authorization": "Bearer token-2"}


@dataclass
class Rig:
    script: Script
    proxy: RunningProxy

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path


@pytest.fixture
async def rig(settings_file: Path) -> AsyncIterator[Rig]:
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900, "responsible_attorney": 2}],
                    default_answer=(200, CONTACTS))
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file, upstream_headers_timeout=1,
                              upstream_idle_timeout=1, max_write_body=4096)
    yield Rig(script, proxy)
    await proxy.close()
    await backend.close()


async def raw_request(rig: Rig, data: bytes) -> bytes:
    """Exact bytes to the proxy: clients normalise what these vectors need to send."""
    reader, writer = await asyncio.open_connection(rig.proxy.url.host, rig.proxy.url.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


@pytest.mark.parametrize("target", [
    "/api/v4/x/../contacts/950.json", "/api/v4/./contacts/950.json", "/api/v4/contacts%2F950.json",
    "/api/v4/contacts/950.json;x", "/api/v4/contacts/%2e%2e/950", "/api/v4/contacts/950%00",
    "http://evil.example/api/v4/contacts.json", "/api/v4/contacts/950\\", "/api/v4/contacts?_method=DELETE",
    "/api/v4/contacts.json?fields=id&fields=name", "/api/v4/contacts.json?fields=id{name{x}}",
    "/api/v4/contacts.json?fields=ID", "/api/v4/contacts.json?fields=id%7Bname",
])
async def test_ambiguous_targets_are_refused_before_the_backend(rig: Rig, target: str) -> None:
    raw = await raw_request(rig, f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\n\r\n".encode())
    assert status_of(raw) == 400, raw[:200]
    assert not rig.script.forwarded and not rig.script.received


@pytest.mark.parametrize("target,status", [
    ("/api/v4/contacts/950.xml", 404), ("/api/v4/contacts/950.json.json", 404),
    ("/api/v4/contacts/950.json/x.css", 404), ("/api/v4/contacts/abc", 404),
    ("/api/v4/bills.json", 405),
])
async def test_unknown_spellings_inside_policed_families_are_refused(rig: Rig, target: str, status: int) -> None:
    method = "POST" if status == 405 else "GET"
    raw = await raw_request(rig, f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\n"
                                 f"Content-Length: 0\r\n\r\n".encode())
    assert status_of(raw) == status
    assert not rig.script.forwarded


async def test_the_backend_gets_the_canonical_target(rig: Rig, http: aiohttp.ClientSession) -> None:
    raw = await raw_request(rig, b"GET //API/v4/Contacts/?fields=id,name&limit=2&fields=id,name HTTP/1.1\r\n"
                                 b"Host: x\r\nAuthorization: Bearer token-2\r\n\r\n")
    assert status_of(raw) == 200
    assert rig.script.forwarded[0].path_qs == "/api/v4/contacts.json?fields=id,name&limit=2"


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
                                    "X_HTTP_Method_Override"])
async def test_method_override_headers_are_refused(rig: Rig, http: aiohttp.ClientSession, header: str) -> None:
    async with http.get(rig.url("/api/v4/contacts.json"), headers={**AUTH, header: "DELETE"}) as r:
        assert r.status == 400
    assert not rig.script.received


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "PURGE"])
async def test_unknown_methods_are_refused(rig: Rig, method: str) -> None:
    target = "127.0.0.1:1" if method == "CONNECT" else "/api/v4/contacts.json"
    raw = await raw_request(rig, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status_of(raw) in (400, 404, 405, 501)  # CONNECT authority-form: aiohttp routes nothing
    assert not rig.script.received


async def test_a_body_on_get_is_refused(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.get(rig.url("/api/v4/contacts.json"), headers=AUTH, data=b'{"a":1}') as r:
        assert r.status == 400
    assert not rig.script.forwarded


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("no content type", b'{"data":{}}', {}, 415),
    ("text/plain", b'{"data":{}}', {"Content-Type": "text/plain"}, 415),
    ("form", b"data=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("utf-7", b'{"data":{}}', {"Content-Type": "application/json; charset=utf-7"}, 415),
    ("bogus charset", b'{"data":{}}', {"Content-Type": "application/json; charset=bogus"}, 415),
    ("gzip body", gzip.compress(b'{"data":{}}'), {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 415),
    ("bom", b'\xef\xbb\xbf{"data":{}}', {"Content-Type": "application/json"}, 400),
    ("trailing garbage", b'{"data":{}} x', {"Content-Type": "application/json"}, 400),
    ("single quotes", b"{'data':{}}", {"Content-Type": "application/json"}, 400),
    ("duplicate key", b'{"data":{"vendor":{"id":900,"id":950}}}', {"Content-Type": "application/json"}, 400),
    ("NaN", b'{"data":{"quantity":NaN}}', {"Content-Type": "application/json"}, 400),
    ("Infinity", b'{"data":{"quantity":-Infinity}}', {"Content-Type": "application/json"}, 400),
    ("lone surrogate", b'{"data":{"note":"\\ud800"}}', {"Content-Type": "application/json"}, 400),
    ("invalid utf-8", b'{"data":{"note":"\xff"}}', {"Content-Type": "application/json"}, 400),
    ("deep nesting", b'{"data":' + b"[" * 5000 + b"]" * 5000 + b"}", {"Content-Type": "application/json"}, 413),
    ("huge int", b'{"data":{"quantity":' + b"9" * 5000 + b"}}", {"Content-Type": "application/json"}, 413),
    ("oversize", b'{"data":{"note":"' + b"x" * 8000 + b'"}}', {"Content-Type": "application/json"}, 413),
    ("method in body", b'{"_method":"DELETE","data":{}}', {"Content-Type": "application/json"}, 400),
    ("not an object", b'[1,2]', {"Content-Type": "application/json"}, 400),
]


@pytest.mark.parametrize("name,body,headers,status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_write_bodies_never_reach_the_backend(
    rig: Rig, http: aiohttp.ClientSession, name: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    async with http.post(rig.url("/api/v4/activities.json"), headers={**AUTH, **headers}, data=body,
                         skip_auto_headers=["Content-Type"]) as r:
        assert r.status == status, await r.text()
        assert (await r.json())["error"]["type"]
    assert not rig.script.forwarded


async def test_small_deep_bodies_are_refused_too(rig: Rig, http: aiohttp.ClientSession) -> None:
    body = b'{"data":' + b"[" * 200 + b"]" * 200 + b"}"
    async with http.post(rig.url("/api/v4/activities.json"), headers={**AUTH, "Content-Type": "application/json"},
                         data=body) as r:
        assert r.status == 400
    assert not rig.script.forwarded


async def test_the_checked_body_is_the_body_forwarded(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (201, {"data": {"id": 1}})
    raw = (b'{ "data" : {"vendor": {"id": "900"}, "price": 12345678901234567890.123, '
           b'"n": 123456789012345678901234567890, "note": "caf\\u00e9"} }')
    async with http.post(rig.url("/api/v4/activities.json"), headers={**AUTH, "Content-Type": "application/json"},
                         data=raw) as r:
        assert r.status == 201, await r.text()
    forwarded = rig.script.forwarded[0]
    assert forwarded.body == ('{"data":{"vendor":{"id":"900"},"price":12345678901234567890.123,'
                              '"n":123456789012345678901234567890,"note":"café"}}').encode()
    assert forwarded.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_id_type_confusion_in_a_reference_is_refused(rig: Rig, http: aiohttp.ClientSession) -> None:
    for ident in ("950.0", "true", '" 950"', '"0950"', '"950abc"', "[950]", '{"id":950}', "-950"):
        body = f'{{"data":{{"vendor":{{"id":{ident}}}}}}}'.encode()
        async with http.post(rig.url("/api/v4/activities.json"),
                             headers={**AUTH, "Content-Type": "application/json"}, data=body) as r:
            assert r.status in (400, 422), (ident, r.status)
    assert not rig.script.forwarded


async def _fault(rig: Rig, handler: Any, http: aiohttp.ClientSession, caller: int = 2) -> tuple[int, bytes]:
    rig.script.fault = handler
    rig.script.caller = {"id": caller, "roles": []}
    try:
        headers = {"Authorization": f"Bearer token-{caller}"}
        async with http.get(rig.url("/api/v4/contacts.json?fields=id,name"), headers=headers) as r:
            return r.status, await r.read()
    except aiohttp.ClientPayloadError:
        return -1, b""


async def _html(request: web.Request) -> web.Response:
    return web.Response(text=f"<html>{CANARY}</html>", content_type="text/html")


async def _wrong_type(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(CONTACTS), content_type="text/plain")


async def _gzip(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(orjson.dumps(CONTACTS)), content_type="application/json",
                        headers={"Content-Encoding": "gzip"})


async def _double_gzip(request: web.Request) -> web.Response:
    body = gzip.compress(gzip.compress(orjson.dumps(CONTACTS)))
    return web.Response(body=body, content_type="application/json", headers={"Content-Encoding": "gzip, gzip"})


async def _malformed(request: web.Request) -> web.Response:
    return web.Response(body=b'{"data": [{"id": 950, "name": "' + CANARY.encode() + b'"},',
                        content_type="application/json")


async def _record_not_object(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps({"data": [CANARY], "meta": {"records": 1}}), content_type="application/json")


async def _bad_utf8(request: web.Request) -> web.Response:
    return web.Response(body=b'{"data":[{"id":950,"name":"' + CANARY.encode() + b'\xff"}]}',
                        content_type="application/json")


async def _data_not_list(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps({"data": {"id": 950, "name": CANARY}}), content_type="application/json")


async def _array(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(CONTACTS["data"]), content_type="application/json")


async def _empty(request: web.Request) -> web.Response:
    return web.Response(body=b"", content_type="application/json")


async def _partial(request: web.Request) -> web.Response:
    return web.Response(status=206, body=orjson.dumps(CONTACTS), content_type="application/json")


async def _extra_member(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps({**CONTACTS, "debug": {"name": CANARY}}), content_type="application/json")


async def _cut_by_close(request: web.Request) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/json"})
    await out.prepare(request)
    await out.write(b'{"data":[{"id":900,"name":"Visible Client"},{"id":950,')
    assert request.transport is not None
    request.transport.close()
    return out


async def _cut_by_length(request: web.Request) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/json"})
    out.content_length = 4000
    await out.prepare(request)
    await out.write(b'{"data":[{"id":900,"name":"Visible Client"}')
    assert request.transport is not None
    request.transport.close()
    return out


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(10)
    return web.Response()


async def _stall_mid_body(request: web.Request) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/json"})
    await out.prepare(request)
    await out.write(b'{"data":[{"id":900,"name":"Visible Client"},')
    await asyncio.sleep(10)
    return out


async def _bomb(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(b"[" + b"0," * 20_000_000 + b"0]"), content_type="application/json",
                        headers={"Content-Encoding": "gzip"})


FAULTS = {
    "html": (_html, 502), "wrong content type": (_wrong_type, 502), "unrequested gzip": (_gzip, 502),
    "stacked gzip": (_double_gzip, 502), "malformed": (_malformed, 502), "bare array": (_array, 502),
    "empty": (_empty, 502), "206": (_partial, 502), "unknown member": (_extra_member, 502),
    "gzip bomb": (_bomb, 502), "hang": (_hang, 504), "record not an object": (_record_not_object, 502),
    "invalid utf-8": (_bad_utf8, 502), "data not a list": (_data_not_list, 502),
}


@pytest.mark.parametrize("caller", [2, 1], ids=["restricted", "all-visible"])
@pytest.mark.parametrize("name", list(FAULTS))
async def test_backend_faults_become_generic_errors(
    rig: Rig, http: aiohttp.ClientSession, name: str, caller: int
) -> None:
    """The all-visible caller has nothing to decide, so its records take the other path
    (proxy.envelope): it must refuse the same bodies."""
    handler, status = FAULTS[name]
    got, body = await _fault(rig, handler, http, caller)
    assert got == status, body[:300]
    assert CANARY.encode() not in body
    assert orjson.loads(body)["error"]["type"] in ("BadGateway", "GatewayTimeout")


def _streamed(records: list[bytes]) -> Any:
    """An index sent chunked (so it streams): a good record, then the given ones."""
    async def handler(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        await out.prepare(request)
        await out.write(b'{"data":[{"id":900,"name":"Visible Client"}')
        for record in records:
            await out.write(b"," + record)
        await out.write(b'],"meta":{"records":2}}')
        await out.write_eof()
        return out
    return handler


BAD_RECORDS = {
    "not an object": b'"' + CANARY.encode() + b'"',
    "invalid utf-8": b'{"id":950,"name":"\xff' + CANARY.encode() + b'"}',
    "bad number": b'{"id":01,"name":"' + CANARY.encode() + b'"}',
    "bad literal": b'{"id":950,"x":tru}',
}


@pytest.mark.parametrize("caller", [2, 1], ids=["restricted", "all-visible"])
@pytest.mark.parametrize("name", list(BAD_RECORDS))
async def test_a_bad_streamed_record_is_never_delivered(
    rig: Rig, http: aiohttp.ClientSession, name: str, caller: int
) -> None:
    """Streamed, the all-visible caller's records go out as the backend's bytes once validated
    (proxy.envelope.check_record): a record that is not a JSON object must still stop the body."""
    status, body = await _fault(rig, _streamed([BAD_RECORDS[name]]), http, caller)
    assert status in (-1, 502), body[:300]
    assert CANARY.encode() not in body


@pytest.mark.parametrize("streamed", [False, True], ids=["buffered", "streamed"])
async def test_a_record_a_rule_reads_that_repeats_a_key_is_refused(
    rig: Rig, http: aiohttp.ClientSession, streamed: bool
) -> None:
    """A duplicate key lets two parsers read one record differently (last wins here; first wins in
    some clients): a policed record that repeats a key is refused (502), on every path."""
    record = b'{"id":950,"name":"' + CANARY.encode() + b'","id":900}'
    if streamed:
        handler = _streamed([record])
    else:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=b'{"data":[' + record + b'],"meta":{"records":1}}',
                                content_type="application/json")
    status, body = await _fault(rig, handler, http, 2)
    assert status in (-1, 502), body[:300]
    assert CANARY.encode() not in body and b"950" not in body


@pytest.mark.parametrize("caller", [2, 1], ids=["restricted", "all-visible"])
async def test_good_streamed_records_go_through(rig: Rig, http: aiohttp.ClientSession, caller: int) -> None:
    status, body = await _fault(rig, _streamed([b'{"id":900,"name":"Visible Again"}']), http, caller)
    assert status == 200 and [r["name"] for r in orjson.loads(body)["data"]] == ["Visible Client", "Visible Again"]


@pytest.mark.parametrize("handler", [_cut_by_close, _cut_by_length, _stall_mid_body])
async def test_a_cut_off_body_never_looks_complete(rig: Rig, http: aiohttp.ClientSession, handler: Any) -> None:
    """Cut before the first record is done: a clean 502. Cut later: the client sees a broken transfer."""
    status, body = await _fault(rig, handler, http)
    if status == 200:
        raise AssertionError(f"a cut-off body was delivered as complete: {body[:200]!r}")
    assert status in (-1, 502, 504)
    assert CANARY.encode() not in body


async def test_error_bodies_never_quote_the_backend(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (422, {"error": {"type": "UnprocessableEntity", "message": f"{CANARY} is taken"}})
    async with http.patch(rig.url("/api/v4/activities/5.json"), headers={**AUTH, "Content-Type": "application/json"},
                          data=b'{"data":{"note":"x"}}') as r:
        body = await r.read()
        assert r.status == 422
    assert CANARY.encode() not in body
    assert orjson.loads(body)["error"]["type"] == "UnprocessableEntity"


async def test_redirects_are_relayed_not_followed(rig: Rig, http: aiohttp.ClientSession) -> None:
    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=303, headers={"Location": f"http://{request.host}/api/v4/elsewhere.json"})

    rig.script.fault = redirect
    async with http.get(rig.url("/api/v4/documents/5/download"), headers=AUTH, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == rig.url("/api/v4/elsewhere.json")
    assert len(rig.script.forwarded) == 1


async def test_range_is_not_honoured_and_the_backend_etag_is_never_exposed(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async def with_etag(request: web.Request) -> web.Response:
        assert "Range" not in request.headers and "If-None-Match" not in request.headers
        return web.Response(body=orjson.dumps({"data": {"id": 5, "vendor": {"id": 950, "name": CANARY}}}),
                            content_type="application/json",
                            headers={"ETag": '"backend-etag"', "Last-Modified": "x", "Cache-Control": "public"})

    rig.script.fault = with_etag
    url = rig.url("/api/v4/activities/5.json?fields=id,vendor{id,name}")
    async with http.get(url, headers={**AUTH, "Range": "bytes=0-10", "If-None-Match": '"backend-etag"'}) as r:
        body = await r.read()
        assert r.status == 200 and CANARY.encode() not in body
        assert r.headers["ETag"] != '"backend-etag"' and "Last-Modified" not in r.headers
        assert r.headers["Cache-Control"] == "private" and "Authorization" in r.headers["Vary"]
        assert "Accept-Ranges" not in r.headers
        assert int(r.headers["Content-Length"]) == len(body)
        ours = r.headers["ETag"]
    async with http.get(url, headers={**AUTH, "If-None-Match": ours}) as r:
        assert r.status == 304
    async with http.head(url, headers=AUTH) as r:
        assert r.status == 200 and r.headers["ETag"] == ours


async def test_facts_that_cannot_be_had_are_503_and_recover(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.facts_down = True
    async with http.get(rig.url("/api/v4/contacts.json"), headers=AUTH) as r:
        assert r.status == 503
        assert (await r.json())["error"]["type"] == "ServiceUnavailable"
    assert not rig.script.forwarded
    rig.script.facts_down = False
    async with http.get(rig.url("/api/v4/contacts.json?fields=id,name"), headers=AUTH) as r:
        assert r.status == 200  # failures are not cached: it recovers by itself
        assert [c["id"] for c in (await r.json())["data"]] == [900]


async def test_an_unknown_caller_gets_401(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.get(rig.url("/api/v4/contacts.json"), headers={"Authorization": "Bearer nobody"}) as r:
        assert r.status == 401
    assert not rig.script.forwarded


@pytest.mark.parametrize("query", ["contact_id=950", "ids[]=950", "vendor_id=950", "matter_id=500"])
async def test_a_write_cannot_move_a_reference_into_the_query(
    rig: Rig, http: aiohttp.ClientSession, query: str
) -> None:
    async with http.post(rig.url(f"/api/v4/notes.json?fields=id&{query}"),
                         headers={**AUTH, "Content-Type": "application/json"}, data=b'{"data":{"subject":"s"}}') as r:
        assert r.status == 400
    assert not rig.script.forwarded


async def test_a_head_of_a_streamed_index_sends_no_body_and_the_connection_stays_in_step(rig: Rig) -> None:
    """A HEAD is forwarded as a GET; on the streamed path the answer's body must not be written (aiohttp
    frames none for HEAD): the next request on the same connection gets its own answer."""
    records = [{"id": 900, "name": "Visible Client"}] * 2000
    body = orjson.dumps({"data": records, "meta": {"paging": {}, "records": len(records)}})

    async def chunked(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        await out.prepare(request)
        for i in range(0, len(body), 4096):
            await out.write(body[i:i + 4096])
        await out.write_eof()
        return out

    rig.script.fault = chunked
    target = "/api/v4/contacts.json?fields=id,name"
    reader, writer = await asyncio.open_connection(rig.proxy.url.host, rig.proxy.url.port)
    writer.write((
        f"HEAD {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\n\r\n"
        f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\nConnection: close\r\n\r\n"
    ).encode())
    await writer.drain()
    try:
        raw = await asyncio.wait_for(reader.read(), 10)  # both answers, to the close
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert status_of(head) == 200
    assert rest.startswith(b"HTTP/1.1 200"), rest[:120]  # the GET's status line comes right after


@pytest.mark.parametrize("prefetch", [(200, {}), (200, {"data": None}), (200, {"data": {"id": 7, "type": "TimeEntry"}}),
                                      (200, {"data": "x"})])
async def test_an_hours_edit_whose_record_cannot_be_had_never_reaches_the_backend(
    rig: Rig, prefetch: tuple[int, Any]
) -> None:
    """The PATCH's hours check reads the activity first: no record, or another one, is not a pass."""
    rig.script.answers[("GET", "/api/v4/activities/101.json")] = prefetch
    async with aiohttp.ClientSession() as http, http.patch(
        rig.url("/api/v4/activities/101.json"), headers={**AUTH, "Content-Type": "application/json"},
        data=orjson.dumps({"data": {"quantity": 3600}}),
    ) as r:
        assert r.status == 503, await r.text()
    assert not [q for q in rig.script.forwarded if q.method == "PATCH"]


async def test_a_relay_route_passes_its_answer_on_after_its_checks(rig: Rig) -> None:
    """`shape: relay` (a document's download, a bill's preview): no rule reads the body, so the
    backend's answer goes on as it came once the route's checks have passed."""
    async def pdf(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.7 preview", content_type="application/pdf")

    rig.script.fault = pdf
    async with aiohttp.ClientSession() as http, http.get(rig.url("/api/v4/bills/5/preview.json"),
                                                         headers=AUTH) as r:
        assert r.status == 200 and await r.read() == b"%PDF-1.7 preview"
