"""Gateway conventions over real sockets: the readiness flag, X-Forwarded-For with trusted hops,
upstream TLS (CA bundle and client certificate) against a local TLS backend, and --request-timeout.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from proxy.config import ConfigValueError
from proxy.http import headers
from tests.support.harness import start_app, start_proxy
from tests.support.process import free_port
from tests.support.scripted import Script, make_scripted_app

ADA = {"Authorization": "Bearer token-1"}
UNPOLICED = "/status/ping"  # outside every policed family: relayed as a stream


def script() -> Script:
    return Script(caller={"id": 1, "roles": []}, matters=[{"id": 500, "client": 900, "responsible_attorney": 1}],
                  default_answer=(200, {"data": {"id": 500}}))  # the answer about matter 500


# --------------------------------------------------------------------------------------- readiness

@pytest.mark.parametrize("flag,expected", [("on", 503), ("off", 200)])
async def test_readiness_follows_the_backend_only_when_asked(
    settings_file: Path, http: aiohttp.ClientSession, flag: str, expected: int
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proxy = await start_proxy(dead, settings_file, ready_requires_upstream=flag)
    try:
        async with http.get(proxy.admin_url / "readyz") as r:
            assert r.status == expected, await r.text()
        async with http.get(proxy.url / "api/v4/matters/500.json", headers=ADA) as r:
            assert r.status in (502, 503)  # off: the pod stays in its Service and answers in JSON
            assert (await r.json())["error"]["type"]
    finally:
        await proxy.close()


async def test_readiness_on_is_ready_when_the_backend_accepts(settings_file: Path, http: aiohttp.ClientSession) -> None:
    backend = await start_app(make_scripted_app(script()))
    proxy = await start_proxy(backend.make_url(""), settings_file, ready_requires_upstream="on")
    try:
        async with http.get(proxy.admin_url / "readyz") as r:
            assert r.status == 200
    finally:
        await proxy.close()
        await backend.close()


# -------------------------------------------------------------------------------- X-Forwarded-For

def test_forwarded_for_keeps_only_trusted_hops() -> None:
    sent = ["6.6.6.6, 10.0.0.1", "10.0.0.2"]  # two header lines are one list
    assert headers.forwarded_for(sent, "10.0.0.9", 0) == "10.0.0.9"
    assert headers.forwarded_for(sent, "10.0.0.9", 1) == "10.0.0.2, 10.0.0.9"
    assert headers.forwarded_for(sent, "10.0.0.9", 2) == "10.0.0.1, 10.0.0.2, 10.0.0.9"
    assert headers.forwarded_for(sent, "10.0.0.9", 9) == "6.6.6.6, 10.0.0.1, 10.0.0.2, 10.0.0.9"
    assert headers.forwarded_for([], "10.0.0.9", 2) == "10.0.0.9"
    assert headers.forwarded_for([" , ,"], "10.0.0.9", 2) == "10.0.0.9"


@pytest.mark.parametrize("hops,expected", [
    (0, "127.0.0.1"),
    (1, "198.51.100.7, 127.0.0.1"),
    (2, "203.0.113.5, 198.51.100.7, 127.0.0.1"),
])
@pytest.mark.parametrize("path", [UNPOLICED, "/api/v4/matters/500.json"])
async def test_trusted_hops_reach_the_backend(
    settings_file: Path, http: aiohttp.ClientSession, hops: int, expected: str, path: str
) -> None:
    scripted = script()
    backend = await start_app(make_scripted_app(scripted))
    proxy = await start_proxy(backend.make_url(""), settings_file, trusted_hops=hops)
    try:
        spoofed = {**ADA, "X-Forwarded-For": "6.6.6.6, 203.0.113.5, 198.51.100.7"}
        async with http.get(proxy.url.with_path(path), headers=spoofed) as r:
            assert r.status == 200, await r.text()
        (forwarded,) = [q for q in scripted.forwarded if q.path_qs.startswith(path)]
        assert forwarded.headers["X-Forwarded-For"] == expected
    finally:
        await proxy.close()
        await backend.close()


# ------------------------------------------------------------------------------------- upstream TLS

def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make throwaway certificates")
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    return d


@pytest.fixture
async def tls_backend(pki: Path) -> AsyncIterator[tuple[str, Script]]:
    """The scripted backend behind TLS, refusing any client without a certificate from the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    scripted = script()
    runner = web.AppRunner(make_scripted_app(scripted))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    yield f"https://127.0.0.1:{port}", scripted
    await runner.cleanup()


async def test_upstream_tls_with_ca_and_client_certificate(
    pki: Path, tls_backend: tuple[str, Script], settings_file: Path, http: aiohttp.ClientSession
) -> None:
    origin, scripted = tls_backend
    proxy = await start_proxy(origin, settings_file, upstream_ca=pki / "ca.pem",
                              upstream_cert=pki / "client.pem", upstream_key=pki / "client.key")
    try:
        for path in (UNPOLICED, "/api/v4/matters/500.json"):  # relayed, and policed (facts included)
            async with http.get(proxy.url.with_path(path), headers=ADA) as r:
                assert r.status == 200, await r.text()
        assert any(q.path_qs.startswith("/api/v4/matters/500.json") for q in scripted.forwarded)
    finally:
        await proxy.close()


@pytest.mark.parametrize("what", ["no CA: the system's do not know the test CA", "no client certificate"])
async def test_upstream_tls_is_verified_both_ways(
    pki: Path, tls_backend: tuple[str, Script], settings_file: Path, http: aiohttp.ClientSession, what: str
) -> None:
    origin, scripted = tls_backend
    options: dict[str, Any] = (
        {"upstream_cert": pki / "client.pem", "upstream_key": pki / "client.key"} if what.startswith("no CA")
        else {"upstream_ca": pki / "ca.pem"}
    )
    proxy = await start_proxy(origin, settings_file, **options)
    try:
        async with http.get(proxy.url.with_path(UNPOLICED), headers=ADA) as r:
            assert r.status == 502
        assert not scripted.received
    finally:
        await proxy.close()


async def test_upstream_tls_settings_are_checked(pki: Path, settings_file: Path) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("http://127.0.0.1:1", {"upstream_ca": pki / "ca.pem"}, "--upstream-ca: need an https --upstream"),
        ("https://127.0.0.1:1", {"upstream_cert": pki / "client.pem"}, "--upstream-cert and --upstream-key go"),
        ("https://127.0.0.1:1", {"upstream_ca": pki / "nope.pem"}, "--upstream-ca: '"),
        ("https://127.0.0.1:1", {"upstream_ca": pki / "client.ext"}, "--upstream-ca: cannot load"),
    ]
    for origin, options, message in cases:
        with pytest.raises(ConfigValueError) as caught:
            await start_proxy(origin, settings_file, **options)
        assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


# --------------------------------------------------------------------------------- request timeout

async def test_request_timeout_answers_504_when_the_answer_does_not_start_in_time(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    scripted = script()

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3)
        return web.json_response({"data": {"id": 500}})

    scripted.fault = slow
    backend = await start_app(make_scripted_app(scripted))
    # The backend's own header timeout (30 s) is far away: only --request-timeout can end this.
    proxy = await start_proxy(backend.make_url(""), settings_file, request_timeout=0.5)
    try:
        started = time.monotonic()
        async with http.get(proxy.url / "api/v4/matters/500.json", headers=ADA) as r:
            assert r.status == 504
            assert (await r.json())["error"]["type"] == "GatewayTimeout"
        assert time.monotonic() - started < 2.5
    finally:
        await proxy.close()
        await backend.close()


async def test_request_timeout_does_not_cut_an_answer_that_has_started(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """The deadline is to the start of the answer: a streamed index that started in time may go on."""
    scripted = script()
    records = [{"id": i, "subject": "x" * 200} for i in range(1000)]  # ~220 KB: past the proxy's first flush

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        body = orjson.dumps({"data": records, "meta": {"records": len(records)}})
        cut = len(body) * 9 // 10
        await response.write(body[:cut])
        await asyncio.sleep(1.5)  # past --request-timeout, within --upstream-idle-timeout
        await response.write(body[cut:])
        await response.write_eof()
        return response

    scripted.fault = streamed
    backend = await start_app(make_scripted_app(scripted))
    proxy = await start_proxy(backend.make_url(""), settings_file, request_timeout=0.7)
    try:
        async with http.get(proxy.url / "api/v4/notes.json", headers=ADA) as r:
            assert r.status == 200
            body = await r.json()
        assert [n["id"] for n in body["data"]] == list(range(1000))
    finally:
        await proxy.close()
        await backend.close()
