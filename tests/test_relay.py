"""The proxy core over real sockets: header hygiene, 502/504, no retries, passthrough."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.support.harness import start_app, start_proxy
from tests.support.raw import read_request, response, start_raw


async def test_headers_are_cleaned_both_ways(settings_file: Path, http: aiohttp.ClientSession) -> None:
    seen: list[dict[str, str]] = []

    async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = await read_request(reader)
        seen.append({k.strip().lower(): v.strip() for k, _, v in
                     (line.decode().partition(":") for line in raw.split(b"\r\n")[1:] if b":" in line)})
        writer.write(response("200 OK", b"hello", {
            "Content-Type": "text/plain", "Connection": "close, X-Secret-Hop", "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5", "Set-Cookie": "session=abc", "Proxy-Authenticate": "Basic",
        }))
        await writer.drain()

    backend = await start_raw(behaviour)
    proxy = await start_proxy(backend.origin, settings_file)
    try:
        async with http.get(proxy.url / "unpoliced/thing", headers={
            "Connection": "X-Drop-Me", "X-Drop-Me": "1", "Keep-Alive": "timeout=1", "TE": "trailers",
            "Proxy-Authorization": "Basic x", "X-Forwarded-For": "6.6.6.6", "X_Forwarded_Host": "evil",
            "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6", "Authorization": "Bearer token-1",
            "X-API-VERSION": "4.0.5",
        }) as r:
            assert r.status == 200 and await r.read() == b"hello"
            for name in ("X-Secret-Hop", "Keep-Alive", "Proxy-Authenticate"):
                assert name not in r.headers
            assert r.headers["Set-Cookie"] == "session=abc"
        upstream = seen[0]
        for name in ("x-drop-me", "keep-alive", "te", "proxy-authorization", "forwarded", "x-real-ip",
                     "x_forwarded_host"):
            assert name not in upstream
        assert upstream["x-forwarded-for"] == "127.0.0.1"
        assert upstream["authorization"] == "Bearer token-1"
        assert upstream["x-api-version"] == "4.0.5"
        # A second caller on the same pooled connection gets none of the first caller's cookies.
        async with http.get(proxy.url / "unpoliced/thing", headers={"Authorization": "Bearer token-3"}) as r:
            await r.read()
        assert "cookie" not in seen[1]
    finally:
        await proxy.close()
        await backend.close()


async def test_refused_upstream_is_502(settings_file: Path, http: aiohttp.ClientSession) -> None:
    backend = await start_raw(lambda r, w: asyncio.sleep(0))
    origin = backend.origin
    await backend.close()  # nothing listens there any more
    proxy = await start_proxy(origin, settings_file)
    try:
        for path in ("unpoliced", "api/v4/contacts.json"):
            async with http.get(proxy.url / path, headers={"Authorization": "Bearer token-2"}) as r:
                body = await r.json()
                assert r.status in (502, 503)
                assert body["error"]["type"] in ("BadGateway", "ServiceUnavailable")
        async with http.get(proxy.url / "unpoliced") as r:
            assert r.status == 502 and (await r.json())["error"]["type"] == "BadGateway"
    finally:
        await proxy.close()


async def test_hanging_upstream_is_504(settings_file: Path, http: aiohttp.ClientSession) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    backend = await start_raw(hang)
    proxy = await start_proxy(backend.origin, settings_file, upstream_headers_timeout=0.5)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with http.get(proxy.url / "unpoliced") as r:
            assert r.status == 504 and (await r.json())["error"]["type"] == "GatewayTimeout"
        assert loop.time() - started < 5
    finally:
        await proxy.close()
        await backend.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST", "PATCH"])
async def test_no_request_is_replayed_after_the_upstream_drops(
    method: str, settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """aiohttp's client replays PUT and DELETE once on a dropped connection unless told not to."""
    received: list[bytes] = []

    async def read_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.transport.abort()

    backend = await start_raw(read_then_drop)
    proxy = await start_proxy(backend.origin, settings_file)
    try:
        # Without a streamed body aiohttp can replay the request, so send none on PUT/DELETE.
        data = b'{"x":1}' if method in ("POST", "PATCH") else None
        async with http.request(method, proxy.url / "unpoliced/item/1", data=data,
                                headers={"Content-Type": "application/json"}) as r:
            assert r.status == 502
        await asyncio.sleep(0.2)
        assert len(received) == 1
    finally:
        await proxy.close()
        await backend.close()


async def test_unpoliced_bodies_stream_both_ways(settings_file: Path, http: aiohttp.ClientSession) -> None:

    async def echo(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        out = aiohttp.web.StreamResponse()
        await out.prepare(request)
        async for chunk in request.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out

    echo_app = aiohttp.web.Application()
    echo_app.router.add_route("*", "/{tail:.*}", echo)
    backend = await start_app(echo_app)
    proxy = await start_proxy(backend.make_url("/"), settings_file)

    async def body() -> object:
        for _ in range(64):
            yield b"x" * 65536

    try:
        async with http.post(proxy.url / "files/upload", data=body()) as r:
            data = await r.read()
            assert r.status == 200 and len(data) == 64 * 65536
    finally:
        await proxy.close()
        await backend.close()


async def test_requests_past_the_in_flight_limit_are_shed_with_503(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    async def slow(request: aiohttp.web.Request) -> aiohttp.web.Response:
        await asyncio.sleep(0.5)
        return aiohttp.web.Response(text="ok")

    app = aiohttp.web.Application()
    app.router.add_get("/slow", slow)
    backend = await start_app(app)
    proxy = await start_proxy(backend.make_url("/"), settings_file, max_in_flight=2)

    async def one() -> int:
        async with http.get(proxy.url / "slow") as r:
            await r.read()
            return r.status

    try:
        statuses = sorted(await asyncio.gather(*(one() for _ in range(3))))
        assert statuses == [200, 200, 503]
        assert await one() == 200  # capacity returns when requests finish
    finally:
        await proxy.close()
        await backend.close()
