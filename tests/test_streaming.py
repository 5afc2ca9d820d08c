"""Index bodies stream record by record; the streamed answer is the buffered one, byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from demo_backend import generate_firm, make_app
from tests.support.harness import start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

RITA = {"Authorization": "Bearer token-2", "Accept-Encoding": "identity"}


def buffered_or_chunked(body: bytes, chunk: int) -> tuple[Any, dict[str, bool]]:
    """A backend handler sending `body` with a Content-Length (buffered by the proxy) or, once
    mode["chunked"] is set, in chunks of `chunk` bytes (streamed)."""
    mode = {"chunked": False}

    async def answer(request: web.Request) -> web.StreamResponse:
        if not mode["chunked"]:
            return web.Response(body=body, content_type="application/json")
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        await out.prepare(request)
        for i in range(0, len(body), chunk):
            await out.write(body[i:i + chunk])
        await out.write_eof()
        return out

    return answer, mode
FIELDS = "id,type,quantity,price,total,note,user{name},matter{id},vendor{name}"


async def test_streamed_and_buffered_answers_are_identical(settings_file: Path, http: aiohttp.ClientSession) -> None:
    firm = generate_firm(scale=1)
    demo = await start_app(make_app(firm))
    forwarded = "id,type,quantity,price,total,note,user{name,id},matter{id},vendor{name,id}"  # as augmented
    async with http.get(f"{demo.make_url('/')}api/v4/activities.json?fields={forwarded}&limit=200",
                        headers={"Authorization": "Bearer token-2"}) as r:
        page = await r.read()
    await demo.close()
    # A body with whitespace and meta first, as another backend could send it.
    doc = orjson.loads(page)
    spaced = b'{ "meta" : ' + orjson.dumps(doc["meta"]) + b',\n "data": [\n' + b",\n  ".join(
        orjson.dumps(r) for r in doc["data"]) + b"\n] }"
    answer, mode = buffered_or_chunked(spaced, 997)  # chunk edges fall inside strings, keys and escapes

    script = Script(caller={"id": 2, "roles": []},
                    matters=[{"id": m, "responsible_attorney": firm.matters[m]["responsible_attorney"]["id"]}
                             for m in firm.matters if firm.can_access(2, m)])
    script.fault = answer
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    try:
        url = f"{proxy.url}/api/v4/activities.json?fields={FIELDS}&limit=200"
        async with http.get(url, headers=RITA) as r:
            buffered = await r.read()
            assert r.status == 200 and "Transfer-Encoding" not in r.headers, buffered[:300]
        mode["chunked"] = True
        async with http.get(url, headers=RITA) as r:
            streamed = await r.read()
            assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        assert streamed == buffered
        answer_doc = orjson.loads(streamed)
        assert len(answer_doc["data"]) == len(doc["data"])
        assert any(rec.get("quantity_redacted") for rec in answer_doc["data"])
        assert all("type" in rec for rec in answer_doc["data"])  # asked for by the client: kept
    finally:
        await proxy.close()
        await backend.close()


async def test_a_chunked_page_is_read_whole_up_to_the_limit_then_streams(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """Issue 14: a chunked index (no Content-Length) is read whole like a sized one up to
    --buffer-chunked-index (one parse, one dump), and past it streams what was read, then the rest:
    the answer's bytes are the same either way."""
    records = [{"id": i, "type": "TimeEntry", "quantity": 3600.0, "user": {"id": 9}, "matter": {"id": 500},
                "note": "n" * 40} for i in range(1, 400)]
    body = orjson.dumps({"data": records, "meta": {"paging": {}, "records": len(records)}})
    answer, mode = buffered_or_chunked(body, 4096)
    mode["chunked"] = True
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "responsible_attorney": 2}])
    script.fault = answer
    backend = await start_app(make_scripted_app(script))
    whole = await start_proxy(backend.make_url("/"), settings_file, buffer_chunked_index=1 << 20)
    small = await start_proxy(backend.make_url("/"), settings_file, buffer_chunked_index=len(body) // 3)
    try:
        target = "/api/v4/activities.json?fields=id,type,quantity,note&limit=200"
        async with http.get(f"{whole.url}{target}", headers=RITA) as r:
            read_whole = await r.read()
            assert r.status == 200 and "Transfer-Encoding" not in r.headers  # answered with its length
        async with http.get(f"{small.url}{target}", headers=RITA) as r:
            streamed = await r.read()
            assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        assert read_whole == streamed and len(orjson.loads(streamed)["data"]) == len(records)
    finally:
        await whole.close()
        await small.close()
        await backend.close()


async def test_a_large_synthetic_index_streams_through(settings_file: Path, http: aiohttp.ClientSession) -> None:
    demo = await start_app(make_app(generate_firm(scale=1)))
    proxy = await start_proxy(demo.make_url("/"), settings_file)
    try:
        async with http.get(f"{proxy.url}/api/v4/activities.json?fields=id,quantity,price,user{{id}}",
                            headers={**RITA, "X-Demo-Synthetic-Records": "20000"}) as r:
            assert r.status == 200
            body = orjson.loads(await r.read())
        records = body["data"]
        assert len(records) == 20000 and body["meta"]["records"] == 20000
        others = [rec for rec in records if rec["user"]["id"] != 2]
        assert others and all("price" not in rec and rec["redacted"] for rec in others)
    finally:
        await proxy.close()
        await demo.close()


async def test_an_all_visible_callers_records_are_the_backends_bytes(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """Nothing to decide for Ada: buffered or streamed, each record is sent as the backend wrote it
    (its spacing and escapes kept), and the two answers are the same bytes."""
    records = [b'{"id": 1, "note": "caf\\u00e9 \\"quoted\\""}', b'{ "id":2,"user":{"id":5} }', b'{"id":3}']
    body = b'{"data": [' + b" ,\n".join(records) + b'], "meta": {"paging": {}, "records": 3}}'
    answer, mode = buffered_or_chunked(body, 7)

    script = Script(caller={"id": 1, "roles": []}, matters=[])
    script.fault = answer
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    try:
        url = f"{proxy.url}/api/v4/activities.json?fields=id,note,user"
        headers = {"Authorization": "Bearer token-1", "Accept-Encoding": "identity"}
        async with http.get(url, headers=headers) as r:
            buffered = await r.read()
            assert r.status == 200 and "Transfer-Encoding" not in r.headers
        mode["chunked"] = True
        async with http.get(url, headers=headers) as r:
            streamed = await r.read()
            assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        assert streamed == buffered
        assert streamed.startswith(b'{"data":[' + b",".join(records) + b"]")
    finally:
        await proxy.close()
        await backend.close()
