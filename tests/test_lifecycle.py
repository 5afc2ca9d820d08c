"""Lifecycle over a real process: SIGTERM drains in-flight requests, SIGHUP reloads atomically."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.conftest import RESTRICTED, write_settings
from tests.support.harness import start_app
from tests.support.process import spawn_proxy
from tests.support.scripted import Script, make_scripted_app
from tests.support.wire import rss_mb


async def test_sigterm_drains_in_flight_requests(settings_file: Path) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    backend = await start_app(app)
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--shutdown-grace", "10")
    try:
        async with aiohttp.ClientSession() as http:
            async def one() -> tuple[int, str]:
                async with http.get(f"{proxy.url}/slow") as r:
                    return r.status, await r.text()

            in_flight = [asyncio.create_task(one()) for _ in range(20)]
            await asyncio.sleep(0.4)
            proxy.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.4)
            refused = False
            try:
                async with aiohttp.ClientSession() as fresh, fresh.get(f"{proxy.url}/slow") as r:
                    await r.read()
            except aiohttp.ClientConnectorError:
                refused = True
            admin = {}
            for path in ("/readyz", "/healthz", "/metrics"):  # the admin port answers through the drain
                async with aiohttp.ClientSession() as fresh, fresh.get(f"{proxy.admin_url}{path}") as r:
                    admin[path] = r.status
            results = await asyncio.gather(*in_flight)
            last_answer = time.monotonic()
        assert results == [(200, "done")] * 20
        assert refused, "new connections are refused once draining"
        assert admin == {"/readyz": 503, "/healthz": 200, "/metrics": 200}
        assert await asyncio.to_thread(proxy.process.wait, 10) == 0
        assert time.monotonic() - last_answer < 1.0, "the process exits once the last request is answered"
    finally:
        proxy.stop()
        await backend.close()


async def test_sighup_reloads_and_keeps_the_old_config_when_the_new_one_is_invalid(tmp_path: Path) -> None:
    script = Script(caller={"id": 2, "roles": []}, matters=[{"id": 500, "client": 900}])
    script.default_answer = (200, {"data": [{"id": 900, "name": "Seen"}, {"id": 950, "name": "Unseen"}],
                                   "meta": {"paging": {}, "records": 2}})
    backend = await start_app(make_scripted_app(script))
    settings = write_settings(tmp_path, {})
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings, log=log)

    async def names() -> list[str]:
        async with aiohttp.ClientSession() as http, http.get(
            f"{proxy.url}/api/v4/contacts.json?fields=id,name", headers={"Authorization": "Bearer token-2"}
        ) as r:
            assert r.status == 200
            return [c["name"] for c in (await r.json())["data"]]

    async def reload_and_wait() -> None:
        before = log.read_text().count('"reload')
        proxy.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if log.read_text().count('"reload') > before:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no reload line logged")

    try:
        assert await names() == ["Seen", "Unseen"]
        write_settings(tmp_path, {2: RESTRICTED})
        await reload_and_wait()
        assert await names() == ["Seen"]
        settings.write_text("defaults: {contacts_visibility: sometimes}\n")
        await reload_and_wait()
        assert "reload_failed_keeping_old_config" in log.read_text()
        assert await names() == ["Seen"]  # still the last good config
    finally:
        proxy.stop()
        await backend.close()


async def test_a_200_mb_unpoliced_body_streams_in_bounded_memory(settings_file: Path) -> None:
    size = 200 * 1024 * 1024
    chunk = b"\x00" * (256 * 1024)

    async def blob(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        out.content_length = size
        await out.prepare(request)
        for _ in range(size // len(chunk)):
            await out.write(chunk)
        return out

    app = web.Application()
    app.router.add_get("/blob", blob)
    backend = await start_app(app)
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file)
    try:
        received = 0
        async with aiohttp.ClientSession() as http, http.get(f"{proxy.url}/blob") as r:
            assert r.status == 200
            async for part in r.content.iter_chunked(1 << 20):
                received += len(part)
        assert received == size
        peak = rss_mb(proxy.process.pid, "VmHWM:")
        print(f"proxy peak RSS relaying 200 MB: {peak:.1f} MB")
        assert peak < 100, peak
    finally:
        proxy.stop()
        await backend.close()
