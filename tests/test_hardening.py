"""Hardening over real sockets: the security-checklist rows the other suites leave open
(/work/shared/reference/security-checklist.md, groups C, F, G, H, I, J, K, L, M).

Every test drives the proxy through a real socket (raw bytes where clients would normalise them) and
counts what the recording backend received: "Up=0" is `received == []` (not even a facts query),
"Up=1" is one forwarded request.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from demo_backend import REQUESTS_KEY, Firm, generate_firm, make_app
from tests.support.harness import POLICIES, RunningProxy, start_app, start_proxy
from tests.support.process import ProxyProcess, free_port, spawn_proxy
from tests.support.raw import response as http_response
from tests.support.scripted import Script, is_facts_query, make_scripted_app
from tests.support.wire import (
    Exchange,
    exchange,
    request,
    rss_mb,
    rst_close,
    start_raw_api,
)
from tests.test_rules_demo import visible_contacts

CANARY = "CANARY-hW3k"
HOST = "proxy.example"
A2 = [("Host", HOST), ("Authorization", "Bearer token-2")]
AUTH2 = {"Authorization": "Bearer token-2"}
JSON_CT = ("Content-Type", "application/json")
BODY = b'{"data":{"note":"hi"}}'  # already canonical: what is checked is what is forwarded
WRITE = "/api/v4/activities.json"
CONTACTS = {
    "data": [{"id": 900, "name": "Visible Client"}, {"id": 950, "name": CANARY}],
    "meta": {"paging": {}, "records": 2},
}
CREATED = (201, {"data": {"id": 1}})
SMUGGLED = "/smuggled/x"


# --- rigs ---------------------------------------------------------------------------------------


@dataclass
class Rig:
    """The proxy (in-process, real socket) in front of the scripted recording backend; caller 2 is
    restricted, contact 900 is visible to it and 950 (named CANARY) is not."""

    script: Script
    backend: TestServer
    proxy: RunningProxy

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    @property
    def backend_port(self) -> int:
        return int(self.backend.port or 0)

    async def raw(self, data: bytes | list[bytes], **kw: Any) -> Exchange:
        assert self.proxy.url.host is not None and self.proxy.url.port is not None
        return await exchange(self.proxy.url.host, self.proxy.url.port, data, **kw)

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.proxy.url.port is not None
        return await asyncio.open_connection("127.0.0.1", self.proxy.url.port)

    async def close(self) -> None:
        await self.proxy.close()
        await self.backend.close()


RIG_DEFAULTS: dict[str, Any] = {
    "client_header_timeout": 2,
    "client_body_timeout": 1,
    "upstream_headers_timeout": 2,
    "upstream_idle_timeout": 2,
    "max_write_body": 65536,
}


async def make_rig(settings: Path, mode: str = "enforce", **options: Any) -> Rig:
    script = Script(
        caller={"id": 2, "roles": []},
        matters=[{"id": 500, "client": 900, "responsible_attorney": 2}],
        default_answer=(200, CONTACTS),
    )
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings, mode=mode, **{**RIG_DEFAULTS, **options})
    return Rig(script, backend, proxy)


@pytest.fixture
async def rig(settings_file: Path) -> AsyncIterator[Rig]:
    r = await make_rig(settings_file)
    yield r
    await r.close()


@dataclass
class Demo:
    """The proxy in front of the demo legacy backend (users 1..8 as `Bearer token-N`; 2 is restricted)."""

    firm: Firm
    backend: TestServer
    proxy: RunningProxy
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    @property
    def received(self) -> list[Any]:
        return self.backend.app[REQUESTS_KEY]

    def forwarded(self) -> list[Any]:
        return [r for r in self.received if not is_facts_query(r.path_qs)]


async def make_demo(settings: Path, **options: Any) -> AsyncIterator[Demo]:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    proxy = await start_proxy(backend.make_url("/"), settings, **options)
    async with aiohttp.ClientSession() as http:
        yield Demo(firm, backend, proxy, http)
    await proxy.close()
    await backend.close()


@pytest.fixture
async def demo(settings_file: Path) -> AsyncIterator[Demo]:
    async for d in make_demo(settings_file):
        yield d


def auth_of(recorded: Any) -> str | None:
    return next((v for k, v in recorded.headers if k.lower() == "authorization"), None)


def json_body(status: int, doc: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json", headers=headers)


async def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


# --- C. methods ----------------------------------------------------------------------------------


async def _with_backend_validators(request: web.Request) -> web.Response:
    validators = {
        "ETag": '"backend-etag"',
        "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT",
        "Cache-Control": "public, max-age=600",
    }
    if request.path.startswith("/api/v4/activities/"):
        return json_body(200, {"data": {"id": 5, "vendor": {"id": 950, "name": CANARY}}}, validators)
    return json_body(200, CONTACTS, validators)


@pytest.mark.parametrize(
    "target",
    ["/api/v4/activities/5.json?fields=id,vendor{id,name}", "/api/v4/contacts.json?fields=id,name"],
    ids=["show", "index"],
)
async def test_c3_head_answers_like_the_redacted_get_without_a_body(rig: Rig, target: str) -> None:
    rig.script.fault = _with_backend_validators
    ex = await rig.raw(
        request("HEAD", target, A2) + request("GET", target, A2), idle=1.0, head_requests=frozenset({0}), responses=2
    )
    assert len(ex.responses) == 2, ex.raw[:600]
    head, get = ex.responses
    # The GET parsed right where HEAD's headers ended: HEAD carried no body bytes.
    assert head.status == get.status == 200 and get.complete
    orjson.loads(get.body)
    volatile = {"date", "x-request-id", "content-length", "transfer-encoding"}
    assert {(k.lower(), v) for k, v in head.headers if k.lower() not in volatile} == {
        (k.lower(), v) for k, v in get.headers if k.lower() not in volatile
    }
    if head.header("Content-Length") is not None:
        assert int(head.header("Content-Length") or -1) == len(get.body)
    assert head.header("Cache-Control") == "private" and head.header("Last-Modified") is None
    assert b"backend-etag" not in ex.raw and CANARY.encode() not in ex.raw
    assert [r.method for r in rig.script.forwarded] == ["GET", "GET"]  # Up=1 each, read as GET


C5_CASES = [
    ("PUT", "/api/v4/contacts/900.json"),
    ("DELETE", "/api/v4/contacts.json"),
    ("POST", "/api/v4/activities/5.json"),
    ("PATCH", "/api/v4/communications.json"),
    ("POST", "/api/v4/users/who_am_i.json"),
    ("DELETE", "/api/v4/bills/5/preview"),
]


@pytest.mark.parametrize("method,target", C5_CASES)
async def test_c5_a_method_the_route_does_not_take_is_405_before_the_backend(
    rig: Rig, method: str, target: str
) -> None:
    body = BODY if method in ("PUT", "POST", "PATCH") else b""
    ex = await rig.raw(request(method, target, A2 + ([JSON_CT] if body else []), body), idle=1.0, responses=1)
    assert ex.first == 405, ex.raw[:300]
    assert orjson.loads(ex.responses[0].body)["error"]["type"] == "MethodNotAllowed"
    assert rig.script.received == []  # Up=0: not even the caller's facts


async def test_c5_a_405_names_the_methods_the_route_allows(rig: Rig) -> None:
    ex = await rig.raw(request("PUT", "/api/v4/contacts/900.json", [*A2, JSON_CT], BODY), idle=1.0, responses=1)
    assert ex.first == 405
    allow = {m.strip() for m in (ex.responses[0].header("Allow") or "").split(",") if m.strip()}
    assert {"GET", "PATCH", "DELETE"} <= allow and "PUT" not in allow


# --- F. headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "connection",
    [
        "close, X-Forwarded-Host, X-Forwarded-For, X-Forwarded-Proto, X-Request-Id",
        "keep-alive, x-forwarded-host, x-forwarded-for",
        "Content-Length",
        "Authorization",
        "authorization, content-length, host, content-type",
    ],
)
async def test_f2_connection_tokens_cannot_remove_framing_identity_or_our_forwarding_headers(
    rig: Rig, connection: str
) -> None:
    rig.script.answers[("POST", WRITE)] = CREATED
    write = request(
        "POST",
        WRITE,
        [
            ("Host", HOST),
            ("Authorization", "Bearer token-2"),
            ("Connection", connection),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "gopher"),
            JSON_CT,
        ],
        BODY,
    )
    pipelined = "close" not in connection
    read = request("GET", "/api/v4/contacts.json?fields=id,name", A2) if pipelined else b""
    ex = await rig.raw(write + read, idle=1.0, responses=2 if pipelined else 1)
    assert ex.statuses == ([201, 200] if pipelined else [201]), ex.raw[:400]
    forwarded = rig.script.forwarded
    assert [f.method for f in forwarded] == (["POST", "GET"] if pipelined else ["POST"])
    post = {k.lower(): v for k, v in forwarded[0].headers.items()}
    assert forwarded[0].body == BODY and post["content-length"] == str(len(BODY))  # framing intact
    assert post["content-type"] == "application/json; charset=utf-8"
    assert post["authorization"] == "Bearer token-2"  # needed upstream: never dropped
    assert post["x-forwarded-host"] == HOST and post["x-forwarded-for"] == "127.0.0.1"
    assert post["x-forwarded-proto"] == "http" and post.get("x-request-id")
    assert post["host"] == f"127.0.0.1:{rig.backend_port}"
    assert "evil.example" not in str(forwarded) and "6.6.6.6" not in str(forwarded)


F5_DUPLICATES = {
    "authorization": request("GET", "/api/v4/contacts.json", [*A2, ("Authorization", "Bearer token-1")]),
    "authorization other case": request("GET", "/api/v4/contacts.json", [*A2, ("AUTHORIZATION", "Bearer token-2")]),
    "authorization unpoliced": request("GET", "/unpoliced/x", [*A2, ("Authorization", "Bearer token-1")]),
    "content-type": request("POST", WRITE, [*A2, JSON_CT, ("content-type", "text/plain")], BODY),
    "x-api-version": request(
        "GET", "/api/v4/contacts.json", [*A2, ("X-API-VERSION", "4.0.9"), ("X-Api-Version", "4.0.4")]
    ),
    "if-match": request(
        "PATCH", "/api/v4/activities/5.json", [*A2, JSON_CT, ("If-Match", '"a"'), ("If-Match", '"b"')], BODY
    ),
    "host": request("GET", "/api/v4/contacts.json", [*A2, ("Host", "other.example")]),
}


@pytest.mark.parametrize("name", list(F5_DUPLICATES))
async def test_f5_a_repeated_singleton_header_is_400_before_the_backend(rig: Rig, name: str) -> None:
    ex = await rig.raw(F5_DUPLICATES[name], idle=1.0, responses=1)
    assert ex.first == 400, ex.raw[:300]
    assert rig.script.received == []


F6_G4_VECTORS = {
    "field over 8190 bytes": request("GET", "/api/v4/contacts.json", [*A2, ("X-Big", "a" * 9000)]),
    "200 headers": request("GET", "/api/v4/contacts.json", A2 + [(f"X-H{i}", "v") for i in range(200)]),
    "NUL in a value": request("GET", "/api/v4/contacts.json", [*A2, ("X-A", "a\x00b")]),
    "SOH in a value": request("GET", "/api/v4/contacts.json", [*A2, ("X-A", "a\x01b")]),
    "bare CR in a value": request("GET", "/api/v4/contacts.json", [*A2, ("X-A", "a\rb")]),
    "DEL in a value": request("GET", "/api/v4/contacts.json", [*A2, ("X-A", "a\x7fb")]),
    "CTL in the Authorization value": request(
        "GET", "/api/v4/contacts.json", [("Host", HOST), ("Authorization", "Bearer token-2\x01")]
    ),
    "obs-fold": request("GET", "/api/v4/contacts.json", [*A2, ("X-A", "a\r\n b")]),
    "obs-fold continuing Authorization": request(
        "GET", "/api/v4/contacts.json", [("Host", HOST), ("Authorization", "Bearer\r\n token-2")]
    ),
    "space before the colon": request("GET", "/api/v4/contacts.json", [*A2, ("X-A ", "b")]),
    "empty header name": request("GET", "/api/v4/contacts.json", [*A2, ("", "x")]),
    "non-ASCII header name": request("GET", "/api/v4/contacts.json", [*A2, ("X-Ä", "b")]),
    "leading whitespace line": (
        b"GET /api/v4/contacts.json HTTP/1.1\r\n Host: x\r\nAuthorization: Bearer token-2\r\n\r\n"
    ),
    "bare LF line ends": b"GET /api/v4/contacts.json HTTP/1.1\nHost: x\nAuthorization: Bearer token-2\n\n",
}


@pytest.mark.parametrize("name", list(F6_G4_VECTORS))
async def test_f6_g4_malformed_header_lines_are_refused_before_the_backend(rig: Rig, name: str) -> None:
    ex = await rig.raw(F6_G4_VECTORS[name], idle=1.0)
    assert ex.first in (400, 431), ex.raw[:300]
    assert ex.closed
    assert rig.script.received == []


@pytest.mark.parametrize("vendor,status,up", [(950, 422, 0), (900, 201, 1)], ids=["hidden vendor", "visible"])
async def test_f7_expect_100_continue_still_inspects_the_body_and_is_not_forwarded(
    rig: Rig, vendor: int, status: int, up: int
) -> None:
    rig.script.default_answer = CREATED
    body = b'{"data":{"vendor":{"id":%d}}}' % vendor
    reader, writer = await rig.open()
    try:
        writer.write(
            request("POST", WRITE, [*A2, JSON_CT, ("Expect", "100-continue"), ("Content-Length", str(len(body)))])
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        assert rig.script.received == []  # nothing moves before the body is in
        writer.write(body)
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    finally:
        writer.close()
    assert final.split(b" ")[1] == str(status).encode(), final
    assert len(rig.script.forwarded) == up
    if up:
        assert rig.script.forwarded[0].body == body
        assert "expect" not in {k.lower() for k in rig.script.forwarded[0].headers}


# --- G. framing, smuggling, pipelining, tunnels ----------------------------------------------------

CHUNKED = b"16\r\n" + BODY + b"\r\n0\r\n\r\n"
N = str(len(BODY))


def _post(headers: list[tuple[str, str]], body: bytes) -> bytes:
    return request("POST", WRITE, [*A2, JSON_CT, *headers], body, content_length=False)


G1_REFUSED = {
    "CL and TE": _post([("Content-Length", str(len(CHUNKED))), ("Transfer-Encoding", "chunked")], CHUNKED),
    "TE and CL": _post([("Transfer-Encoding", "chunked"), ("Content-Length", "4")], CHUNKED),
    "duplicate CL, same": _post([("Content-Length", N), ("Content-Length", N)], BODY),
    "duplicate CL, different": _post([("Content-Length", N), ("Content-Length", "5")], BODY),
    "CL list": _post([("Content-Length", f"{N}, {N}")], BODY),
    "CL plus sign": _post([("Content-Length", "+" + N)], BODY),
    "CL empty": _post([("Content-Length", "")], BODY),
    "CL negative": _post([("Content-Length", "-1")], BODY),
    "CL hex": _post([("Content-Length", "0x16")], BODY),
    "CL underscore": _post([("Content-Length", "2_2")], BODY),
    "CL non-ASCII digits": _post([("Content-Length", "\u0662\u0662".encode().decode("latin-1"))], BODY),
    "chunk size 0x": _post([("Transfer-Encoding", "chunked")], b"0x16\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk size underscore": _post([("Transfer-Encoding", "chunked")], b"1_6\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk size negative": _post([("Transfer-Encoding", "chunked")], b"-16\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk size plus": _post([("Transfer-Encoding", "chunked")], b"+16\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk size overflow": _post([("Transfer-Encoding", "chunked")], b"f" * 20 + b"\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "LF in a chunk extension": _post([("Transfer-Encoding", "chunked")], b"16;a\nb\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "bare LF after the chunk size": _post([("Transfer-Encoding", "chunked")], b"16\n" + BODY + b"\r\n0\r\n\r\n"),
    "no CRLF after chunk data": _post([("Transfer-Encoding", "chunked")], b"16\r\n" + BODY + b"0\r\n\r\n"),
}


@pytest.mark.parametrize("name", list(G1_REFUSED))
async def test_g1_conflicting_or_malformed_framing_is_400_and_closed(rig: Rig, name: str) -> None:
    ex = await rig.raw(G1_REFUSED[name], idle=1.5)
    assert ex.first == 400, ex.raw[:300]
    assert ex.closed
    assert rig.script.received == []


async def test_g1_a_bad_chunk_arriving_after_the_headers_is_refused_not_a_500(rig: Rig) -> None:
    first = request("POST", WRITE, [*A2, JSON_CT, ("Transfer-Encoding", "chunked")], b"16\r\n" + BODY[:5])
    ex = await rig.raw([first, BODY[5:] + b"\r\nZZ\r\n0\r\n\r\n"], pause=0.3, idle=2.5, responses=1)
    assert ex.first is not None and 400 <= ex.first < 500, ex.raw[:300]
    assert rig.script.received == []


async def test_g2_the_backend_only_sees_framing_the_proxy_made(rig: Rig) -> None:
    rig.script.default_answer = CREATED
    ex = await rig.raw(
        _post(
            [("Transfer-Encoding", "chunked")],
            b"5\r\n" + BODY[:5] + b"\r\n11;ext=1\r\n" + BODY[5:] + b"\r\n0\r\nX-Trailer: smuggled\r\n\r\n",
        ),
        idle=1.0,
        responses=1,
    )
    assert ex.statuses == [201]
    (got,) = rig.script.forwarded
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert got.body == BODY and headers["content-length"] == N
    assert "transfer-encoding" not in headers and "x-trailer" not in headers  # trailers never forwarded


async def test_g3_sixty_thousand_tiny_chunks_are_read_in_bounded_time(rig: Rig) -> None:
    rig.script.default_answer = CREATED
    note = b"x" * 60_000  # under the rig's 64 KiB --max-write-body
    body = b'{"data":{"note":"' + note + b'"}}'
    chunked = b"".join(b"1\r\n" + body[i : i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n"
    loop = asyncio.get_running_loop()
    started = loop.time()
    ex = await rig.raw(_post([("Transfer-Encoding", "chunked")], b"") + chunked, idle=3.0, timeout=10, responses=1)
    elapsed = loop.time() - started
    assert ex.statuses == [201], ex.raw[:300]
    assert rig.script.forwarded[0].body == body
    assert elapsed < 3, elapsed


G2_TE = {
    # refused: anything but a plain, final "chunked"
    "chunked, identity": ("chunked, identity", 400),
    "xchunked": ("xchunked", 400),
    "identity": ("identity", 400),
    "chunked twice in one": ("chunked, chunked", 400),
    "vertical tab": ("\x0bchunked", 400),
    "space before the colon": (None, 400),
    "duplicate TE": ("DUP", 400),
    # legal spellings: parsed as chunked, forwarded with the proxy's own framing
    "Chunked": ("Chunked", 201),
    "tab": ("\tchunked", 201),
}


@pytest.mark.parametrize("name", list(G2_TE))
async def test_g2_transfer_encoding_obfuscations_are_refused_or_read_one_way(rig: Rig, name: str) -> None:
    rig.script.default_answer = CREATED
    value, status = G2_TE[name]
    if value is None:
        raw = (
            request("POST", WRITE, [*A2, JSON_CT], b"", content_length=False)[:-2]
            + b"Transfer-Encoding : chunked\r\n\r\n"
        )
    elif value == "DUP":
        raw = _post([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")], b"")
    else:
        raw = _post([("Transfer-Encoding", value)], b"")
    ex = await rig.raw(raw + CHUNKED, idle=1.0, responses=1)
    assert ex.first == status, ex.raw[:300]
    if status == 400:
        assert rig.script.received == []
    else:
        (got,) = rig.script.forwarded
        assert got.body == BODY and "transfer-encoding" not in {k.lower() for k in got.headers}


SMUGGLE_BYTES = (0x01, 0x09, 0x0B, 0x0C, 0x0D, 0x20, 0x7F, 0xFF)


def _smuggling_corpus() -> dict[str, bytes]:
    """defparam/smuggler-style mutations of Transfer-Encoding, in CL.TE, TE.CL and TE-only framings;
    each hides a request for SMUGGLED that only a desynchronised reader would see."""
    hidden = request("GET", SMUGGLED, A2)
    te_body = b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n"
    cl_te_body = b"0\r\n\r\n" + hidden
    out: dict[str, bytes] = {}
    for byte in SMUGGLE_BYTES:
        c = chr(byte)
        lines = {
            "before name": f"{c}Transfer-Encoding: chunked",
            "end of name": f"Transfer-Encoding{c}: chunked",
            "inside name": f"Transfer{c}Encoding: chunked",
            "start of value": f"Transfer-Encoding:{c}chunked",
            "end of value": f"Transfer-Encoding: chunked{c}",
            "inside value": f"Transfer-Encoding: chun{c}ked",
            "neighbour value": f"X-Abc: {c}\r\nTransfer-Encoding: chunked",
        }
        for where, line in lines.items():
            te = line.encode("latin-1")
            head = b"POST /unpoliced/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\n"
            out[f"CL.TE {byte:#04x} {where}"] = (
                head + b"Content-Length: %d\r\n" % len(cl_te_body) + te + b"\r\n\r\n" + cl_te_body
            )
            out[f"TE.CL {byte:#04x} {where}"] = head + b"Content-Length: 4\r\n" + te + b"\r\n\r\n" + te_body
            out[f"TE {byte:#04x} {where}"] = head + te + b"\r\n\r\n" + te_body
    base = b"POST /unpoliced/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-2\r\n"
    out["obs-fold hides TE"] = base + b"X-Abc: a\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + te_body
    out["CR hides TE"] = base + b"X-Abc: \rTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + te_body
    out["TE then identity"] = base + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + te_body
    return out


SMUGGLING = _smuggling_corpus()


async def test_g5_smuggling_mutation_corpus_never_desynchronises(rig: Rig) -> None:
    """Oracle (G5): per client request the backend gets at most one request, and never the hidden one."""
    rig.script.default_answer = CREATED
    verdicts: dict[str, str] = {}
    for name, data in SMUGGLING.items():
        rig.script.received.clear()
        ex = await rig.raw(data, idle=0.4, timeout=3, responses=1)
        # The proxy's own facts queries (the sentinel's, for this restricted caller) are not the
        # client's requests; a smuggled one would be, and is looked for among everything received.
        paths = [r.path_qs for r in rig.script.forwarded]
        assert len(paths) <= 1, (name, paths)
        assert not any(r.path_qs.startswith(SMUGGLED) for r in rig.script.received), (name, paths)
        assert len([s for s in ex.statuses if s >= 200]) <= 1, (name, ex.statuses)
        if paths:
            assert ex.first == 201, (name, ex.raw[:200])
        else:
            assert ex.first is None or ex.first >= 400, (name, ex.raw[:200])
        verdicts[name] = "forwarded once" if paths else f"refused {ex.first}"
    accepted = sorted(n for n, v in verdicts.items() if v == "forwarded once")
    print(f"{len(verdicts)} vectors; forwarded once (read as legal chunked, whitespace is OWS): {accepted}")


async def test_g6_a_pipeline_of_two_users_is_answered_each_under_its_own_identity(demo: Demo) -> None:
    all_ids = set(demo.firm.contacts)
    visible = visible_contacts(demo.firm, 2)
    activity = next(iter(demo.firm.activities))
    listing = "/api/v4/contacts.json?fields=id,name&limit=200"
    a = [("Host", HOST), ("Authorization", "Bearer token-1")]
    b = [("Host", HOST), ("Authorization", "Bearer token-2")]
    pipeline = (
        request("GET", listing, a)
        + request("GET", listing, b)
        + request("PATCH", f"/api/v4/activities/{activity}.json", [*a, JSON_CT], b'{"data":{"note":"pipelined by A"}}')
        + request("GET", listing, b)
        + request("GET", listing, a)
    )
    assert demo.proxy.url.port is not None
    ex = await exchange("127.0.0.1", demo.proxy.url.port, pipeline, idle=2.0, timeout=15, responses=5)
    assert ex.statuses == [200] * 5, ex.statuses
    ids = [{c["id"] for c in orjson.loads(r.body)["data"]} if i != 2 else None for i, r in enumerate(ex.responses)]
    assert ids[0] == all_ids and ids[4] == all_ids
    assert ids[1] == visible and ids[3] == visible and visible != all_ids
    forwarded = [(r.method, r.path_qs.split("?")[0], auth_of(r)) for r in demo.forwarded()]
    assert forwarded == [
        ("GET", "/api/v4/contacts.json", "Bearer token-1"),
        ("GET", "/api/v4/contacts.json", "Bearer token-2"),
        ("PATCH", f"/api/v4/activities/{activity}.json", "Bearer token-1"),
        ("GET", "/api/v4/contacts.json", "Bearer token-2"),
        ("GET", "/api/v4/contacts.json", "Bearer token-1"),
    ]
    for r in demo.received:  # B's facts are fetched with B's credentials, never A's
        if "creator_id=" in r.path_qs:
            creator = r.path_qs.split("creator_id=")[1].split("&")[0]
            assert auth_of(r) == f"Bearer token-{creator}"


G7_TUNNELS = {
    "websocket, unpoliced, then a request": (
        request(
            "GET",
            "/unpoliced/ws",
            [
                *A2,
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
        + request("GET", SMUGGLED, A2),
        2,
    ),
    "websocket, policed": (
        request(
            "GET",
            "/api/v4/contacts.json?fields=id,name",
            [
                *A2,
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ],
        )
        + b"\x81\x85garbage-frame",
        1,
    ),
    "h2c then the HTTP/2 preface": (
        request(
            "GET",
            "/unpoliced/x",
            [
                *A2,
                ("Connection", "Upgrade, HTTP2-Settings"),
                ("Upgrade", "h2c"),
                ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
            ],
        )
        + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        1,
    ),
    "HTTP/2 prior-knowledge preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", 0),
    "CONNECT to the backend's own port": (b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n", 0),
}


@pytest.mark.parametrize("name", list(G7_TUNNELS))
async def test_g7_upgrades_and_prefaces_are_never_tunnelled(rig: Rig, name: str) -> None:
    data, requests_sent = G7_TUNNELS[name]
    if b"%d" in data:
        data = data % rig.backend_port
    ex = await rig.raw(data, idle=0.5)
    assert 101 not in ex.statuses and not any(s < 200 for s in ex.statuses), ex.raw[:300]
    forwarded = rig.script.forwarded
    assert len(forwarded) <= requests_sent
    for got in forwarded:
        names = {k.lower() for k in got.headers}
        assert not names & {"upgrade", "http2-settings"}, got.headers
        assert "upgrade" not in {k.lower(): v for k, v in got.headers.items()}.get("connection", "").lower()
        assert got.method in ("GET",) and b"garbage-frame" not in got.body and b"PRI *" not in got.body
    if requests_sent == 0:
        assert ex.first is not None and ex.first >= 400 and rig.script.received == []


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"GET /api/v4/contacts.json HTTP/2.0", id="HTTP/2.0"),
        pytest.param(b"GET /api/v4/contacts.json", id="HTTP/0.9"),
        pytest.param(b"GET /api/v4/contacts.json HTTP/3.0", id="HTTP/3.0"),
        pytest.param(b"GET /api/v4/contacts.json HTTP/1.1x", id="HTTP/1.1x"),
        pytest.param(b"GET /api/v4/contacts.json HTTP/11", id="HTTP/11"),
    ],
)
async def test_g7_only_http_1_x_request_lines_are_served(rig: Rig, line: bytes) -> None:
    ex = await rig.raw(line + b"\r\nHost: x\r\nAuthorization: Bearer token-2\r\n\r\n", idle=1.0, responses=1)
    assert ex.first in (400, 505) or (ex.first is None and ex.closed), ex.raw[:200]
    assert rig.script.received == []


# --- H. upstream responses ----------------------------------------------------------------------

POISON = http_response(
    "200 OK",
    orjson.dumps({"data": {"id": 1, "name": CANARY, "email": CANARY, "roles": ["Administrator"]}}),
    {"Content-Type": "application/json"},
)


@pytest.mark.parametrize("first", ["/unpoliced/a", "/api/v4/activities/7.json?fields=id"], ids=["relayed", "policed"])
async def test_h5_bytes_after_a_declared_body_never_reach_the_next_caller(settings_file: Path, first: str) -> None:
    """The backend appends a whole forged response (a who_am_i naming an administrator) to A's answer;
    B's next exchanges on the pooled connection must not read it."""
    answered = {"n": 0}

    async def answer(raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        answered["n"] += 1
        target = raw.split(b" ")[1]
        if answered["n"] == 1:
            doc = b'{"data":{"id":7}}'
            writer.write(http_response("200 OK", doc, {"Content-Type": "application/json"}) + POISON)
        elif target.startswith(b"/api/v4/contacts.json"):
            doc = orjson.dumps({"data": [{"id": 950, "name": CANARY}], "meta": {"paging": {}, "records": 1}})
            writer.write(http_response("200 OK", doc, {"Content-Type": "application/json"}))
        else:
            writer.write(http_response("200 OK", b'{"data":{"id":"b"}}', {"Content-Type": "application/json"}))
        await writer.drain()
        return True

    api = await start_raw_api(answer)
    proxy = await start_proxy(api.origin, settings_file, upstream_connections=1, upstream_headers_timeout=2)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(str(proxy.url) + first, headers={"Authorization": "Bearer token-1"}) as r:
                assert r.status == 200 and await r.json() == {"data": {"id": 7}}
            async with http.get(str(proxy.url) + "/unpoliced/b", headers=AUTH2) as r:
                relayed = await r.read()
                assert CANARY.encode() not in relayed
                assert r.status == 502 or relayed == b'{"data":{"id":"b"}}'
            async with http.get(str(proxy.url) + "/api/v4/contacts.json?fields=id,name", headers=AUTH2) as r:
                policed = await r.read()
                assert CANARY.encode() not in policed
                assert r.status != 200 or orjson.loads(policed)["data"] == []  # B is restricted, sees none
    finally:
        await proxy.close()
        await api.close()


H10_ANSWERS = {
    "101 switching protocols": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + CANARY.encode() * 10,
        False,
        (502,),
    ),
    "102 then close": (b"HTTP/1.1 102 Processing\r\n\r\n", False, (502, 504)),
    "100 then a final answer": (b"HTTP/1.1 100 Continue\r\n\r\n", True, (200, 502)),
    "103 then a final answer": (
        b"HTTP/1.1 103 Early Hints\r\nLink: </api/v4/x>; rel=preload\r\n\r\n",
        True,
        (200, 502),
    ),
}


@pytest.mark.parametrize("name", list(H10_ANSWERS))
async def test_h10_interim_and_switching_answers_on_a_policed_route(settings_file: Path, name: str) -> None:
    interim, then_final, statuses = H10_ANSWERS[name]

    async def answer(raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(interim)
        if then_final:
            doc = orjson.dumps({"data": {"id": 5, "vendor": {"id": 950, "name": CANARY, "type": "Person"}}})
            writer.write(http_response("200 OK", doc, {"Content-Type": "application/json"}))
        await writer.drain()
        return then_final

    api = await start_raw_api(answer)
    proxy = await start_proxy(api.origin, settings_file, upstream_headers_timeout=1, upstream_idle_timeout=1)
    try:
        assert proxy.url.port is not None
        ex = await exchange(
            "127.0.0.1",
            proxy.url.port,
            request("GET", "/api/v4/activities/5.json?fields=id,vendor{id,name}", A2),
            idle=2.0,
            responses=1,
        )
        assert ex.statuses and all(s >= 200 for s in ex.statuses), ex.raw[:300]
        assert ex.first in statuses, ex.raw[:300]
        assert CANARY.encode() not in ex.raw
        if ex.first == 200:
            vendor = orjson.loads(ex.responses[0].body)["data"]["vendor"]
            assert (
                vendor["name"] == "****"
                and vendor["redacted"] is True
                and set(vendor) <= {"id", "name", "type", "redacted"}
            )
        assert len(api.forwarded) == 1
    finally:
        await proxy.close()
        await api.close()


async def test_h11_a_huge_single_object_is_502_in_bounded_memory(settings_file: Path) -> None:
    script = Script(caller={"id": 1, "roles": []})
    sent = {"bytes": 0}

    async def huge(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        out.enable_chunked_encoding()
        await out.prepare(request)
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError):
            await out.write(b'{"data":{"id":5,"note":"')
            for _ in range(1024):  # 64 MB, never finished
                await out.write(chunk)
                sent["bytes"] += len(chunk)
        return out

    script.fault = huge
    backend = await start_app(make_scripted_app(script))
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--max-show-body", "1048576")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{proxy.url}/api/v4/activities/5.json?fields=id,note", headers={"Authorization": "Bearer token-1"}
            ) as r,
        ):
            body = await r.read()
            assert r.status == 502 and orjson.loads(body)["error"]["type"] == "BadGateway"
        elapsed = loop.time() - started
        peak = rss_mb(proxy.process.pid, "VmHWM:")
        print(
            f"H11: 502 after {elapsed * 1000:.0f} ms, backend got to send {sent['bytes'] / 2**20:.1f} MB, "
            f"proxy peak RSS {peak:.1f} MB"
        )
        assert elapsed < 10 and peak < 100
        assert sent["bytes"] < 32 * 2**20  # it stopped reading near the cap, not at the end
    finally:
        proxy.stop()
        await backend.close()


# --- I. conditional requests and shared caches ----------------------------------------------------


async def test_i3_k6_if_match_reaches_the_backend_stale_is_412_and_concurrent_writers_get_one_2xx(
    demo: Demo,
) -> None:
    activity = next(iter(demo.firm.activities))
    ada = {"Authorization": "Bearer token-1"}
    url = demo.url(f"/api/v4/activities/{activity}.json")
    async with demo.http.get(url + "?fields=id,etag", headers=ada) as r:
        assert r.status == 200
        etag = (await r.json())["data"]["etag"]
    body = {"Content-Type": "application/json"}
    async with demo.http.patch(
        url, headers={**ada, **body, "If-Match": '"0000stale"'}, data=b'{"data":{"note":"stale writer"}}'
    ) as r:
        assert r.status == 412 and (await r.json())["error"]["type"] == "PreconditionFailed"
    assert demo.firm.activities[activity]["note"] != "stale writer"

    async def patch(note: str) -> int:
        async with demo.http.patch(
            url, headers={**ada, **body, "If-Match": etag}, data=orjson.dumps({"data": {"note": note}})
        ) as r:
            await r.read()
            return r.status

    statuses = await asyncio.gather(patch("writer one"), patch("writer two"))
    assert sorted(statuses) == [200, 412], statuses
    assert demo.firm.activities[activity]["note"] == ("writer one" if statuses[0] == 200 else "writer two")
    patches = [r for r in demo.forwarded() if r.method == "PATCH"]
    assert len(patches) == 3 and all(dict(r.headers).get("If-Match") for r in patches)


NGINX_CONF = """
worker_processes 1;
{user}
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache keys_zone=shared:1m;
    proxy_cache_path {dir}/careless keys_zone=careless:1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_cache shared;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status always;
        }}
        # The control: a cache told to ignore what the proxy says about caching.
        location /careless/ {{
            proxy_pass http://127.0.0.1:{upstream}/;
            proxy_cache careless;
            proxy_cache_valid 200 10m;
            proxy_ignore_headers Cache-Control Expires Vary Set-Cookie;
            add_header X-Cache $upstream_cache_status always;
        }}
    }}
}}
"""


@pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (CI: apt-get install -y nginx) - the I4 shared-cache test needs it",
)
async def test_i4_a_shared_cache_in_front_never_serves_one_users_body_to_another(demo: Demo, tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=tmp_path, port=port, upstream=demo.proxy.url.port, user="user root;" if os.geteuid() == 0 else ""
        )
    )
    nginx = await asyncio.create_subprocess_exec(
        "nginx",
        "-p",
        str(tmp_path),
        "-e",
        str(tmp_path / "error.log"),
        "-c",
        str(conf),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    front = f"http://127.0.0.1:{port}"
    path = "/api/v4/contacts.json?fields=id,name&limit=200"
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            await asyncio.sleep(0.05)

        async def get(url: str, token: int) -> tuple[str, set[int], str]:
            async with demo.http.get(url, headers={"Authorization": f"Bearer token-{token}"}) as r:
                assert r.status == 200, await r.text()
                return (
                    r.headers.get("X-Cache", ""),
                    {c["id"] for c in (await r.json())["data"]},
                    r.headers.get("Cache-Control", ""),
                )

        everyone = set(demo.firm.contacts)
        mine = visible_contacts(demo.firm, 2)
        status1, ids1, cache_control = await get(front + path, 1)
        status2, ids2, _ = await get(front + path, 2)
        assert ids1 == everyone and ids2 == mine, (status1, status2)
        assert status2 != "HIT" and cache_control == "private"
        # Control: the same cache ignoring Cache-Control/Vary does hand A's body to B, so the proxy's
        # `Cache-Control: private` (with `Vary: Authorization`) is what keeps B safe above.
        _, careless1, _ = await get(front + "/careless" + path, 1)
        status, careless2, _ = await get(front + "/careless" + path, 2)
        assert careless1 == everyone and status == "HIT" and careless2 == everyone
    finally:
        nginx.terminate()
        _, err = await nginx.communicate()
        assert b"emerg" not in err, err


# --- J. resource limits and slow clients ---------------------------------------------------------


async def test_j1_slowloris_is_cut_at_the_header_deadline(settings_file: Path) -> None:
    rig = await make_rig(settings_file, client_header_timeout=1)
    try:
        reader, writer = await rig.open()
        loop = asyncio.get_running_loop()
        started = loop.time()
        reading = asyncio.ensure_future(reader.read())
        got = b""
        writer.write(b"GET /api/v4/contacts.json HTTP/1.1\r\nHost: x\r\n")
        for i in range(15):  # a header line every 0.3 s: progress must not extend the deadline
            await asyncio.wait([reading], timeout=0.3)
            if reading.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(f"X-Slow-{i}: {i}\r\n".encode())
        with contextlib.suppress(ConnectionError):
            got = await asyncio.wait_for(reading, 1)
        closed_after = loop.time() - started
        writer.close()
        assert closed_after < 1 + 1.0, closed_after
        assert not got.startswith(b"HTTP/1.1 2")
        assert rig.script.received == []
    finally:
        await rig.close()


async def test_j2_a_slow_body_on_a_checked_write_is_408_within_the_body_deadline(settings_file: Path) -> None:
    rig = await make_rig(settings_file, client_body_timeout=1)
    try:
        reader, writer = await rig.open()
        loop = asyncio.get_running_loop()
        writer.write(request("POST", WRITE, [*A2, JSON_CT, ("Content-Length", "200")]))
        started = loop.time()
        reading = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        for _ in range(20):  # one byte every 0.3 s
            await asyncio.wait([reading], timeout=0.3)
            if reading.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(b" ")
        head = await asyncio.wait_for(reading, 2)
        elapsed = loop.time() - started
        writer.close()
        assert head.startswith(b"HTTP/1.1 408"), head
        assert elapsed < 1 + 1.0, elapsed
        assert rig.script.received == []
    finally:
        await rig.close()


async def _stream_blob(request: web.Request) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    out.content_length = 4 * 2**20
    await out.prepare(request)
    with contextlib.suppress(ConnectionError):
        for _ in range(64):
            await out.write(b"\x00" * 65536)
    return out


async def _blob_or_contacts(request: web.Request) -> web.StreamResponse:
    if request.path.startswith("/blob"):
        return await _stream_blob(request)
    return json_body(200, CONTACTS)


async def test_j3_j4_idle_slow_and_non_reading_clients_do_not_starve_a_normal_request(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    rig.script.fault = _blob_or_contacts
    writers: list[asyncio.StreamWriter] = []
    try:
        for i in range(220):
            _, w = await rig.open()
            writers.append(w)
            if 150 <= i < 200:
                w.write(b"GET /api/v4/contacts.json HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            elif i >= 200:
                w.write(request("GET", "/blob/big", A2))  # 4 MB asked for, never read
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        for path in ("/api/v4/contacts.json?fields=id,name", "/unpoliced/ping"):
            started = loop.time()
            async with http.get(rig.url(path), headers=AUTH2) as r:
                assert r.status == 200
                await r.read()
            assert loop.time() - started < 1.5, (path, loop.time() - started)
    finally:
        for w in writers:
            w.close()


async def test_j5_an_exhausted_upstream_pool_gives_504_in_time_and_recovers(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    rig = await make_rig(settings_file, upstream_connections=2, upstream_headers_timeout=0.5)
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        if request.path.startswith("/slow"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 5)
        return json_body(200, {"ok": True})

    rig.script.fault = slow
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def one(i: int) -> int:
            async with http.get(rig.url(f"/slow/{i}"), headers=AUTH2) as r:
                await r.read()
                return r.status

        statuses = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(12))), 5)
        elapsed = loop.time() - started
        assert set(statuses) <= {502, 503, 504} and 504 in statuses, statuses
        assert elapsed < 2.5, elapsed
        release.set()
        async with http.get(rig.url("/fast"), headers=AUTH2) as r:  # the pool was not leaked
            assert r.status == 200
    finally:
        release.set()
        await rig.close()


@pytest.mark.skipif(
    shutil.which("slowhttptest") is None, reason="slowhttptest is not installed (CI: apt-get install -y slowhttptest)"
)
async def test_j1_j4_slowhttptest_slowloris_leaves_the_service_available(settings_file: Path, tmp_path: Path) -> None:
    rig = await make_rig(settings_file, client_header_timeout=2)
    try:
        prefix = tmp_path / "slowloris"
        tool = await asyncio.create_subprocess_exec(
            "slowhttptest",
            "-H",
            "-c",
            "300",
            "-r",
            "150",
            "-i",
            "1",
            "-l",
            "5",
            "-p",
            "2",
            "-g",
            "-o",
            str(prefix),
            "-u",
            rig.url("/unpoliced/ping"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(tool.communicate(), 30)
        rows = list(csv.DictReader(prefix.with_suffix(".csv").read_text().splitlines()))
        assert len(rows) >= 3, out[-800:]
        # Columns: Seconds, Closed, Pending, Connected, Service Available (the connection count while
        # slowhttptest's probe gets answers within -p seconds, 0 once it does not).
        available = [int(r["Service Available"]) for r in rows]
        connected = [int(r["Connected"]) for r in rows]
        closed = [int(r["Closed"]) for r in rows]
        print(f"slowhttptest -H: connected {connected}, closed {closed}, service available {available}")
        assert all(a > 0 for a in available), available
        assert closed[-1] > 0 and connected[-1] < max(connected), (connected, closed)  # the proxy cuts them
    finally:
        await rig.close()


# --- K. upstream faults and write semantics -------------------------------------------------------


async def test_k4_a_client_gone_while_the_backend_works_still_completes_the_write_once(
    settings_file: Path, tmp_path: Path
) -> None:
    """A real process: aiohttp's TestServer (the in-process harness) cancels handlers when the client
    goes away; `serve` runs with handler_cancellation=False, which is what this row relies on."""
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900, "responsible_attorney": 2}])
    completed: list[str] = []

    async def slow_write(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        completed.append(request.method)
        return json_body(201, {"data": {"id": 1}})

    script.fault = slow_write
    backend = await start_app(make_scripted_app(script))
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, log=log)
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(request("POST", WRITE, [*A2, JSON_CT, ("X-Request-Id", "k4-write")], BODY))
        await writer.drain()
        await wait_until(lambda: len(script.forwarded) == 1)
        rst_close(writer)  # the client vanishes while the proxy waits on the backend

        def logged() -> list[Any]:
            return [
                orjson.loads(x) for x in log.read_text().splitlines() if '"k4-write"' in x and '"event":"request"' in x
            ]

        await wait_until(lambda: bool(logged()), 4)
        assert len(script.forwarded) == 1 and completed == ["POST"]  # Up=1, and the write completed
        assert logged()[0]["upstream_status"] == 201
    finally:
        proxy.stop()
        await backend.close()


async def test_k5_a_client_gone_mid_body_forwards_nothing(settings_file: Path, tmp_path: Path) -> None:
    """A real process (handler_cancellation=False, as in production)."""
    script = Script(
        caller={"id": 2, "roles": []},
        matters=[{"id": 500, "client": 900, "responsible_attorney": 2}],
        default_answer=CREATED,
    )
    backend = await start_app(make_scripted_app(script))
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, log=log)
    try:
        for target in (WRITE, "/unpoliced/upload"):
            _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(
                request("POST", target, [*A2, JSON_CT, ("Content-Length", "500")]) + b'{"data":{"note":"' + b"x" * 50
            )
            await writer.drain()
            await asyncio.sleep(0.3)
            rst_close(writer)
        await asyncio.sleep(0.8)
        # The checked write: read and checked before anything moves, so not even the facts (Up=0).
        # The relayed one streams, but the backend never got a complete request.
        assert script.received == []
        lines = [orjson.loads(x) for x in log.read_text().splitlines() if '"event":"request"' in x]
        print("K5:", [(x["route"], x["status"], x["error"]) for x in lines])
        assert len(lines) == 2
    finally:
        proxy.stop()
        await backend.close()


async def test_k4_k5_a_client_that_goes_away_is_not_counted_as_an_internal_error(
    settings_file: Path, tmp_path: Path
) -> None:
    script = Script(caller={"id": 2, "roles": []})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.4)
        return json_body(200, {"ok": True})

    script.fault = slow
    backend = await start_app(make_scripted_app(script))
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, log=log)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(
            request("POST", WRITE, [*A2, JSON_CT, ("Content-Length", "500"), ("X-Request-Id", "gone-body")])
            + b'{"data":'
        )
        _, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer2.write(request("GET", "/unpoliced/slow", [*A2, ("X-Request-Id", "gone-waiting")]))
        await asyncio.sleep(0.15)
        rst_close(writer)
        writer2.close()

        def lines() -> dict[str, Any]:
            return {
                x["request_id"]: x
                for x in map(orjson.loads, log.read_text().splitlines())
                if x.get("event") == "request" and str(x.get("request_id")).startswith("gone-")
            }

        await wait_until(lambda: len(lines()) == 2, 4)
        for line in lines().values():
            assert line["status"] != 500 and line["error"] != "InternalError", line
        assert '"internal_error"' not in log.read_text()
    finally:
        proxy.stop()
        await backend.close()


@pytest.mark.parametrize("target", [WRITE, "/unpoliced/upload"], ids=["policed", "relayed"])
async def test_k7_idempotency_key_and_request_id_are_preserved_end_to_end(
    rig: Rig, http: aiohttp.ClientSession, target: str
) -> None:
    rig.script.default_answer = CREATED
    headers = {
        **AUTH2,
        "Content-Type": "application/json",
        "Idempotency-Key": "idem-6f1c2a9e-0b1d",
        "X-Request-Id": "req-4b7e-k7",
    }
    async with http.post(rig.url(target), headers=headers, data=BODY) as r:
        assert r.status == 201
        assert r.headers["X-Request-Id"] == "req-4b7e-k7"
    (got,) = rig.script.forwarded
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["idempotency-key"] == "idem-6f1c2a9e-0b1d"
    assert headers["x-request-id"] == "req-4b7e-k7"


# --- L. lifecycle ----------------------------------------------------------------------------------


async def test_l2_sigterm_past_the_grace_never_leaves_a_truncated_200(settings_file: Path) -> None:
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900, "responsible_attorney": 2}])
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        async def hold() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 5)

        if request.path == "/slow-headers":
            await hold()
            return web.Response(text="late")
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        with contextlib.suppress(ConnectionError):
            if request.path == "/half-body":
                out.content_length = 1000
                await out.prepare(request)
                await out.write(b"x" * 100)
            else:  # a policed index that stops mid-body
                out.enable_chunked_encoding()
                await out.prepare(request)
                await out.write(b'{"data":[{"id":900,"name":"Visible Client"},')
            await hold()
            await out.write(b"]}" if request.path != "/half-body" else b"x" * 900)
        return out

    script.fault = slow
    backend = await start_app(make_scripted_app(script))
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--shutdown-grace", "1")
    try:
        async with aiohttp.ClientSession() as http:
            http._retry_connection = False  # report the first failure, not a retry's connection refusal

            async def one(path: str) -> str:
                try:
                    async with http.get(proxy.url + path, headers=AUTH2) as r:
                        body = await r.read()
                        return f"{r.status} complete {len(body)} bytes"
                except (aiohttp.ClientError, ConnectionError) as exc:
                    return f"error {type(exc).__name__}"

            tasks = [
                asyncio.ensure_future(one(p))
                for p in ("/slow-headers", "/half-body", "/api/v4/contacts.json?fields=id,name")
            ]
            await asyncio.sleep(0.6)
            proxy.process.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await asyncio.wait_for(asyncio.gather(*tasks), 8)
            code = await asyncio.to_thread(proxy.process.wait, 8)
            stopped = loop.time() - started
        print(f"L2: {results}; exit {code} after {stopped:.2f}s")
        for result in results:
            assert not result.startswith("2"), result  # never a complete-looking success
        assert stopped < 1 + 3
    finally:
        release.set()
        proxy.stop()
        await backend.close()


async def test_l3_sigkill_mid_write_then_restart_never_replays(settings_file: Path) -> None:
    script = Script(
        caller={"id": 2, "roles": []},
        matters=[{"id": 500, "client": 900, "responsible_attorney": 2}],
        default_answer=(200, CONTACTS),
    )
    release = asyncio.Event()

    async def slow_write(request: web.Request) -> web.Response:
        if request.method == "POST":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 3)
            return json_body(201, {"data": {"id": 1}})
        return json_body(200, CONTACTS)

    script.fault = slow_write
    backend = await start_app(make_scripted_app(script))
    upstream = str(backend.make_url("/")).rstrip("/")
    proxy = await spawn_proxy(upstream, settings_file)
    restarted: ProxyProcess | None = None
    try:
        # 1: killed while the backend holds the write.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(request("POST", WRITE, [*A2, JSON_CT], BODY))
        await wait_until(lambda: len([r for r in script.forwarded if r.method == "POST"]) == 1)
        # 2: killed while a second client is still sending its body.
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer2.write(request("POST", WRITE, [*A2, JSON_CT, ("Content-Length", "100")]) + b'{"data":')
        await asyncio.sleep(0.2)
        proxy.process.kill()
        await asyncio.to_thread(proxy.process.wait, 5)
        assert await reader.read() == b"" and await reader2.read() == b""  # cut, never answered
        writer.close()
        writer2.close()
        restarted = await spawn_proxy(upstream, settings_file)
        release.set()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{restarted.url}/api/v4/contacts.json?fields=id,name", headers=AUTH2) as r,
        ):
            assert r.status == 200
        await asyncio.sleep(1.0)
        posts = [r for r in script.forwarded if r.method == "POST"]
        assert len(posts) == 1, posts  # Up<=1: nothing was queued to be replayed
    finally:
        release.set()
        proxy.stop()
        if restarted is not None:
            restarted.stop()
        await backend.close()


def _serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy.cli",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--admin-listen",
            f"127.0.0.1:{free_port()}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_l5_startup_with_broken_policies_and_settings_fails_listing_every_problem(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    contacts = policies / "contacts.yaml"
    contacts.write_text(contacts.read_text().replace("methods: [GET, POST]", "methods: [GET, FETCH]", 1))
    bills = policies / "bills.yaml"
    bills.write_text(bills.read_text().replace("shape: index", "shape: spreadsheet", 1))
    settings = tmp_path / "settings.yaml"
    settings.write_text("defaults:\n  contacts_visibility: sometimes\n  colour: blue\nusers: {}\n")
    result = _serve("--upstream", "http://127.0.0.1:9", "--policies", str(policies), "--settings", str(settings))
    assert result.returncode != 0
    err = result.stderr
    assert "Traceback" not in err, err
    for needle in (
        "contacts.yaml:11",
        "methods",
        "bills.yaml:7",
        "shape",
        "settings.yaml:2",
        "sometimes",
        "settings.yaml:3",
        "colour",
    ):
        assert needle in err, (needle, err)


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--policies", "/nonexistent/policies"], ["/nonexistent/policies"]),
        (
            ["--client-header-timeout", "-1", "--mode", "sometimes", "--upstream-connections", "many"],
            ["--client-header-timeout", "--mode", "--upstream-connections"],
        ),
    ],
    ids=["missing policy dir", "three bad flags"],
)
def test_l5_startup_with_bad_flags_fails_listing_every_problem(
    settings_file: Path, args: list[str], needles: list[str]
) -> None:
    result = _serve("--upstream", "http://127.0.0.1:9", "--settings", str(settings_file), *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


async def test_l7_a_new_relationship_in_the_backend_is_seen_after_the_facts_ttl(settings_file: Path) -> None:
    async for demo in make_demo(settings_file, facts_ttl=1):
        firm = demo.firm
        hidden = sorted(set(firm.contacts) - visible_contacts(firm, 2))[0]
        matter = next(m for m in sorted(firm.matters) if firm.can_access(2, m))
        rita = {"Authorization": "Bearer token-2"}
        async with demo.http.get(demo.url(f"/api/v4/contacts/{hidden}.json?fields=id,name"), headers=rita) as r:
            assert r.status == 404
        # The change happens behind the proxy's back: straight to the backend, as another user.
        async with demo.http.post(
            demo.backend.make_url("/api/v4/relationships.json"),
            headers={"Authorization": "Bearer token-1", "Content-Type": "application/json"},
            data=orjson.dumps(
                {"data": {"matter": {"id": matter}, "contact": {"id": hidden}, "description": "Co-counsel"}}
            ),
        ) as r:
            assert r.status == 201, await r.text()
        assert hidden in visible_contacts(firm, 2)
        await asyncio.sleep(1.3)
        async with demo.http.get(demo.url(f"/api/v4/contacts/{hidden}.json?fields=id,name"), headers=rita) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["data"]["id"] == hidden


# --- M. errors, logs, leaks ------------------------------------------------------------------------

TRACEBACK_MARKERS = (b"Traceback", b'File "', b"site-packages", b'.py", line')


async def test_m1_nothing_answers_with_a_traceback(rig: Rig, http: aiohttp.ClientSession) -> None:
    rig.script.default_answer = (
        200,
        {"data": [{"id": 900, "name": "Visible Client"}], "meta": {"paging": {}, "records": 1}},
    )  # unpoliced routes relay it as is
    answers: list[bytes] = []
    vectors = [
        *F6_G4_VECTORS.values(),
        *G1_REFUSED.values(),
        *F5_DUPLICATES.values(),
        *(v for v, _ in G7_TUNNELS.values() if b"%d" not in v),
        request("POST", WRITE, [*A2, JSON_CT], b'{"data":{"note":"\xff"}}'),
        request("POST", WRITE, [*A2, JSON_CT], b'{"data":' + b"[" * 40 + b"]" * 40 + b"}"),
        request("GET", "/api/v4/contacts.json?fields=id{", A2),
        request("GETT", "/api/v4/contacts.json", A2),
    ]
    for data in vectors:
        answers.append((await rig.raw(data, idle=0.5, timeout=3, responses=1)).raw)
    for fault, status in ((_html_error, 502), (_raise_in_backend, 500)):
        rig.script.fault = fault  # a backend traceback page, and a backend that crashes (its status passes)
        async with http.get(rig.url("/api/v4/contacts.json?fields=id,name"), headers=AUTH2) as r:
            answers.append(await r.read())
            assert r.status == status and set(orjson.loads(answers[-1])) == {"error"}
    for raw in answers:
        assert raw, "every vector gets an answer"
        for marker in TRACEBACK_MARKERS:
            assert marker not in raw, raw[:400]
        assert CANARY.encode() not in raw


async def _html_error(request: web.Request) -> web.Response:
    return web.Response(
        status=200,
        text=f'<pre>Traceback (most recent call last):\n  File "x.py", line 1\n{CANARY}',
        content_type="text/html",
    )


async def _raise_in_backend(request: web.Request) -> web.Response:
    raise RuntimeError(CANARY)


async def test_m1_a_malformed_request_gets_the_generic_error_body_without_its_own_bytes(rig: Rig) -> None:
    ex = await rig.raw(
        request("GET", "/api/v4/contacts.json", [("Host", HOST), ("Authorization", "Bearer token-SECRET-m1\x01")]),
        idle=1.0,
        responses=1,
    )
    assert ex.first == 400
    assert b"token-SECRET-m1" not in ex.raw
    assert orjson.loads(ex.responses[0].body)["error"]["type"] == "BadRequest"


async def test_m1_an_unrepresentable_number_in_a_write_is_400_not_500(rig: Rig, http: aiohttp.ClientSession) -> None:
    async with http.post(
        rig.url(WRITE),
        headers={**AUTH2, "Content-Type": "application/json"},
        data=b'{"data":{"quantity":1e9999999999999999999}}',
    ) as r:
        assert r.status == 400, await r.text()
    assert rig.script.forwarded == []
    assert '"internal_error"' not in rig.proxy.logs.getvalue()


async def test_m2_logs_hold_no_token_hidden_name_or_body(settings_file: Path, http: aiohttp.ClientSession) -> None:
    marker = "BODY-MARKER-q8Zr"
    for mode in ("enforce", "dry-run"):
        rig = await make_rig(settings_file, mode=mode)
        try:
            rig.script.answers[("POST", WRITE)] = (201, {"data": {"id": 1, "note": marker}})
            rig.script.answers[("GET", "/api/v4/activities/5.json")] = (
                200,
                {"data": {"id": 5, "vendor": {"id": 950, "name": CANARY}}},
            )
            rig.script.answers[("PATCH", "/api/v4/activities/5.json")] = (
                422,
                {"error": {"type": "UnprocessableEntity", "message": f"{CANARY} {marker} is taken"}},
            )
            json_ct = {**AUTH2, "Content-Type": "application/json"}
            calls = [
                ("GET", "/api/v4/contacts.json?fields=id,name", None),
                ("GET", "/api/v4/activities/5.json?fields=id,vendor{id,name}", None),
                ("POST", WRITE, f'{{"data":{{"note":"{marker}"}}}}'),
                ("POST", WRITE, f'{{"data":{{"note":"{marker}","vendor":{{"id":950}}}}}}'),
                ("POST", WRITE, f'{{"data":{{"note":"{marker}",}}}}'),
                ("PATCH", "/api/v4/activities/5.json", f'{{"data":{{"note":"{marker}"}}}}'),
                ("GET", f"/api/v4/contacts/950.json?fields=id,name&q={marker}", None),
            ]
            for method, path, data in calls:
                async with http.request(method, rig.url(path), headers=json_ct, data=data) as r:
                    await r.read()
            async with http.get(
                rig.url("/api/v4/contacts.json"), headers={"Authorization": "Bearer token-9-nope"}
            ) as r:
                assert r.status == 401
            logs = rig.proxy.logs.getvalue()
            assert logs.count('"event":"request"') == len(calls) + 1
            for secret in ("token-2", "token-9-nope", "Bearer", CANARY, marker):
                assert secret not in logs, (mode, secret)
        finally:
            await rig.close()


async def test_m2_a_malformed_request_does_not_put_its_token_in_the_process_logs(
    settings_file: Path, tmp_path: Path
) -> None:
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy("http://127.0.0.1:9", settings_file, log=log)
    try:
        ex = await exchange(
            "127.0.0.1",
            proxy.port,
            request("GET", "/api/v4/contacts.json", [("Host", HOST), ("Authorization", "Bearer token-SECRET-m2\x01")]),
            idle=1.0,
        )
        assert ex.first == 400
        await asyncio.sleep(0.3)
    finally:
        proxy.stop()
    text = log.read_text()
    assert "token-SECRET-m2" not in text and "Traceback" not in text, text[-800:]


async def test_m3_the_backends_address_never_reaches_the_client(rig: Rig, http: aiohttp.ClientSession) -> None:
    origin = f"http://127.0.0.1:{rig.backend_port}"
    leaky = {
        "Server": f"LegacyAPI/1.0 ({origin})",
        "Via": f"1.1 127.0.0.1:{rig.backend_port}",
        "X-Powered-By": "legacy",
    }

    async def leak(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/api/v4/contacts.json":
            doc = {
                **CONTACTS,
                "meta": {
                    "paging": {
                        "next": f"{origin}/api/v4/contacts.json?page_token=p2&fields=id,name",
                        "previous": f"{origin}/api/v4/contacts.json?page_token=p0",
                    },
                    "records": 2,
                },
            }
            return json_body(200, doc, leaky)
        if path == "/api/v4/activities.json" and request.method == "POST":
            return json_body(201, {"data": {"id": 77}}, {**leaky, "Location": f"{origin}/api/v4/activities/77.json"})
        if path.startswith("/api/v4/documents/"):
            return web.Response(status=303, headers={**leaky, "Location": f"{origin}/api/v4/files/9"})
        if path == "/api/v4/activities/404.json":
            return json_body(404, {"error": {"type": "NotFound", "message": f"No route {origin}{path}"}}, leaky)
        return web.Response(text="relayed", headers={**leaky, "Location": f"{origin}/elsewhere"})

    rig.script.fault = leak
    json_ct = {**AUTH2, "Content-Type": "application/json"}
    seen: list[str] = []
    for method, path, data in [
        ("GET", "/api/v4/contacts.json?fields=id,name", None),
        ("POST", WRITE, BODY),
        ("GET", "/api/v4/documents/5/download", None),
        ("GET", "/api/v4/activities/404.json?fields=id", None),
        ("GET", "/unpoliced/thing", None),
    ]:
        async with http.request(method, rig.url(path), headers=json_ct, data=data, allow_redirects=False) as r:
            body = await r.read()
            seen.append(
                f"{method} {path} -> {r.status}\n"
                + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
                + ("\n" + body.decode("utf-8", "replace") if not path.startswith("/unpoliced") else "")
            )
    for text in seen:
        assert f":{rig.backend_port}" not in text, text
    policed_index = seen[0]
    assert (
        f"{rig.proxy.url}/api/v4/contacts.json?fields=id%2Cname&page_token=p2" in policed_index
        or f"{rig.proxy.url}/api/v4/contacts.json?fields=id,name&page_token=p2" in policed_index
    ), policed_index


@pytest.mark.parametrize(
    "path", ["/api/v4/activities/5.json?fields=id", "/unpoliced/thing"], ids=["policed", "relayed"]
)
async def test_m3_content_location_and_link_headers_do_not_name_the_backend(
    rig: Rig, http: aiohttp.ClientSession, path: str
) -> None:
    origin = f"http://127.0.0.1:{rig.backend_port}"

    async def located(request: web.Request) -> web.Response:
        return json_body(
            200,
            {"data": {"id": 5}},
            {
                "Content-Location": f"{origin}/api/v4/activities/5.json",
                "Link": f'<{origin}/api/v4/activities.json?page_token=p2>; rel="next"',
            },
        )

    rig.script.fault = located
    async with http.get(rig.url(path), headers=AUTH2) as r:
        assert r.status == 200
        headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    assert f":{rig.backend_port}" not in headers, headers
