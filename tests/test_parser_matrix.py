"""G8, the parser matrix: the raw-vector verdicts of tests/test_hardening.py, with the proxy as a real
process, once on aiohttp's default (llhttp) parser and once on its pure-Python parser
(AIOHTTP_NO_EXTENSIONS=1). Several aiohttp advisories hit only one of the two (CVE-2023-47641).

A verdict is the class of what happened, not the exact bytes: `refused` (a 4xx, or the connection cut,
and the backend got nothing), `5xx`, `served` (the backend got at most one request per client request,
never a hidden one) or `smuggled`. Both parsers must give the same class ("the stricter one wins" means
the proxy must refuse under both what either refuses).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RESTRICTED, write_settings
from tests.support.harness import start_app
from tests.support.scripted import Script, make_scripted_app
from tests.support.wire import exchange, request, spawn_proxy_env
from tests.test_hardening import (
    A2,
    BODY,
    CHUNKED,
    CONTACTS,
    CREATED,
    F5_DUPLICATES,
    F6_G4_VECTORS,
    G1_REFUSED,
    G2_TE,
    JSON_CT,
    SMUGGLED,
    SMUGGLING,
    WRITE,
)

PARSERS = {"llhttp": {}, "python": {"AIOHTTP_NO_EXTENSIONS": "1"}}
AUTH_LINE = b"Authorization: Bearer token-2\r\n\r\n"


def _te(value: str | None) -> bytes:
    head = request("POST", WRITE, [*A2, JSON_CT], b"", content_length=False)[:-2]
    if value is None:
        return head + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED
    if value == "DUP":
        return head + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED
    return head + f"Transfer-Encoding: {value}\r\n\r\n".encode("latin-1") + CHUNKED


VECTORS: dict[str, bytes | list[bytes]] = {
    **{f"F5 {k}": v for k, v in F5_DUPLICATES.items()},
    **{f"F6/G4 {k}": v for k, v in F6_G4_VECTORS.items()},
    **{f"G1 {k}": v for k, v in G1_REFUSED.items()},
    "G1 bad chunk after the headers": [
        request("POST", WRITE, [*A2, JSON_CT, ("Transfer-Encoding", "chunked")], b"16\r\n" + BODY[:5]),
        BODY[5:] + b"\r\nZZ\r\n0\r\n\r\n",
    ],
    **{f"G2 TE {k}": _te(v) for k, (v, _) in G2_TE.items()},
    **{f"G5 {k}": v for k, v in SMUGGLING.items()},
    "G6 pipeline of two users": request("GET", "/api/v4/contacts.json?fields=id,name", A2)
    + request("GET", "/unpoliced/x", [("Host", "x"), ("Authorization", "Bearer token-1")]),
    "G7 PRI preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "G7 h2c upgrade": request(
        "GET",
        "/unpoliced/x",
        [*A2, ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQ")],
    ),
    "G7 HTTP/2.0 request line": b"GET /api/v4/contacts.json HTTP/2.0\r\nHost: x\r\n" + AUTH_LINE,
    "G7 HTTP/3.0 request line": b"GET /api/v4/contacts.json HTTP/3.0\r\nHost: x\r\n" + AUTH_LINE,
    "G7 HTTP/0.9 request line": b"GET /api/v4/contacts.json\r\n\r\n",
    "C2 lowercase get": request("get", "/api/v4/contacts.json", A2),
    "C2 GETT": request("GETT", "/api/v4/contacts.json", A2),
    "C2 PROPFIND": request("PROPFIND", "/api/v4/contacts.json", A2),
}

KNOWN = {
    "G1 bad chunk after the headers": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug: a malformed chunk arriving after the headers is a 408 (after --client-body-timeout) under "
            "llhttp but a 500 InternalServerError under the Python parser: _read_body does not map the payload's "
            "TransferEncodingError (see test_hardening K5 xfail)"
        ),
    ),
    "G7 HTTP/0.9 request line": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug: an HTTP/0.9-style request line is served under llhttp (`HTTP/0.9 401`, who_am_i fetched) "
            "and refused (400) under the Python parser; it should be refused under both"
        ),
    ),
    "C2 lowercase get": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug (C2/G8): lowercase `get` is refused (400) by llhttp but the Python parser upper-cases it "
            "and the proxy serves it as GET; the stricter verdict should win (405/400 under both)"
        ),
    ),
    "G7 HTTP/3.0 request line": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug (G7/G8): `HTTP/3.0` request lines are refused by llhttp but served by the proxy under the "
            "Python parser (`HTTP/3.0 200 OK`, forwarded); the proxy should refuse versions other than 1.0/1.1"
        ),
    ),
    "G2 TE chunked twice in one": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug (G2/G8): `Transfer-Encoding: chunked, chunked` is refused by llhttp but served (201, "
            "forwarded) under the Python parser; the proxy takes whatever its parser accepts instead of "
            "refusing any Transfer-Encoding but one `chunked`"
        ),
    ),
    "G5 TE 0x09 end of value": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug (G5/G8): `Transfer-Encoding: chunked<TAB>` (legal OWS) is refused by llhttp but served "
            "under the Python parser; same verdict under both is required (the stricter wins)"
        ),
    ),
    "G5 TE 0xff neighbour value": pytest.mark.xfail(
        strict=True,
        reason=(
            "proxy bug (G8): a header value with obs-text (bytes 0x80-0xff, e.g. latin-1 `caf\\xe9`) is relayed "
            "under llhttp (cut at the first such byte: the backend gets `caf`) but answered 502 BadGateway under "
            "the Python parser, before anything is sent: a client's header becomes a gateway error"
        ),
    ),
}

_TABLE: dict[str, dict[str, tuple[str, str]]] = {}


def classify(first: int | None, closed: bool, received: list[Any], requests_sent: int) -> str:
    paths = [r.path_qs for r in received]
    if any(p.startswith(SMUGGLED) for p in paths):
        return "smuggled"
    if first is None:
        return "refused" if not received and closed else f"no answer, backend got {len(paths)}"
    if first >= 500:
        return "5xx"
    if first >= 400 and not received:
        return "refused"
    forwarded = [
        p
        for p in paths
        if not p.startswith("/api/v4/users/who_am_i")
        and "creator_id" not in p
        and "responsible_attorney" not in p
        and "contact{id},matter{id}" not in p
    ]
    return "served" if len(forwarded) <= requests_sent else f"backend got {len(forwarded)}"


async def _verdicts(tmp: Path) -> dict[str, dict[str, tuple[str, str]]]:
    script = Script(
        caller={"id": 2, "roles": []},
        matters=[{"id": 500, "client": 900, "responsible_attorney": 2}],
        default_answer=CREATED,
    )
    script.answers[("GET", "/api/v4/contacts.json")] = (200, CONTACTS)
    backend = await start_app(make_scripted_app(script))
    settings = write_settings(tmp, {2: RESTRICTED})
    table: dict[str, dict[str, tuple[str, str]]] = {name: {} for name in VECTORS}
    try:
        for parser, env in PARSERS.items():
            proxy = await spawn_proxy_env(
                str(backend.make_url("/")).rstrip("/"), settings, "--client-body-timeout", "1", env=env
            )
            try:
                for name, data in VECTORS.items():
                    script.received.clear()
                    sent = 2 if name.startswith("G6") else 1
                    ex = await exchange("127.0.0.1", proxy.port, data, pause=0.2, idle=1.6, timeout=4, responses=sent)
                    verdict = classify(ex.first, ex.closed, list(script.received), sent)
                    table[name][parser] = (verdict, f"{ex.statuses} up={len(script.received)}")
            finally:
                proxy.stop()
    finally:
        await backend.close()
    return table


async def verdicts(tmp: Path) -> dict[str, dict[str, tuple[str, str]]]:
    if not _TABLE:
        _TABLE.update(await _verdicts(tmp))
        differ = {n: v for n, v in _TABLE.items() if v["llhttp"][0] != v["python"][0]}
        print(f"parser matrix: {len(_TABLE)} vectors, {len(differ)} differ: {differ}")
    return _TABLE


def test_the_matrix_really_switches_parsers() -> None:
    probe = "import aiohttp.http_parser as p; print(p.HttpRequestParser is p.HttpRequestParserPy)"
    for parser, env in PARSERS.items():
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
        ).stdout.strip()
        assert out == ("True" if parser == "python" else "False"), (parser, out)


@pytest.mark.parametrize("name", [pytest.param(n, marks=KNOWN[n]) if n in KNOWN else n for n in VECTORS])
async def test_both_parsers_give_the_same_verdict(name: str, tmp_path: Path) -> None:
    table = await asyncio.wait_for(verdicts(tmp_path), 120)
    llhttp, python = table[name]["llhttp"], table[name]["python"]
    assert "smuggled" not in (llhttp[0], python[0]), (llhttp, python)
    assert llhttp[0] == python[0], f"llhttp: {llhttp}, python: {python}"
