"""G8, the parser matrix. aiohttp runs on llhttp or on a pure-Python parser (AIOHTTP_NO_EXTENSIONS=1),
and they disagree: the Python one serves lower-case methods, HTTP/3.0 request lines and
`Transfer-Encoding: chunked, chunked`, which llhttp refuses (CVE-2023-47641 was such a split). The
stricter one wins: the proxy refuses to start on the Python parser, and every raw vector below must be
refused or served cleanly on llhttp.

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
            if parser == "python":
                continue  # the proxy refuses to run on it (test_the_proxy_refuses_the_lenient_parser)
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
    return _TABLE


def test_the_matrix_really_switches_parsers() -> None:
    probe = "import aiohttp.http_parser as p; print(p.HttpRequestParser is p.HttpRequestParserPy)"
    for parser, env in PARSERS.items():
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
        ).stdout.strip()
        assert out == ("True" if parser == "python" else "False"), (parser, out)


async def test_the_proxy_refuses_the_lenient_parser(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, {2: RESTRICTED})
    with pytest.raises(RuntimeError, match="exited with 2"):
        await spawn_proxy_env("http://127.0.0.1:9", settings, env=PARSERS["python"])


@pytest.mark.parametrize("name", list(VECTORS))
async def test_every_vector_is_refused_or_served_cleanly(name: str, tmp_path: Path) -> None:
    table = await asyncio.wait_for(verdicts(tmp_path), 120)
    verdict, detail = table[name]["llhttp"]
    assert verdict in ("refused", "served"), (verdict, detail)
