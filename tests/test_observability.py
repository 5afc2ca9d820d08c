"""What an SRE reads off the proxy: end-to-end duration, in-flight, load shed, facts cache, process
metrics, what is loaded; and request log lines with client, relayed path, bytes and a 5xx level."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

AUTH = {"Authorization": "Bearer token-2"}


async def scrape(proxy: RunningProxy, http: aiohttp.ClientSession) -> tuple[str, dict[tuple[str, str], float]]:
    async with http.get(f"{proxy.admin_url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    samples = {
        (s.name, json.dumps(s.labels, sort_keys=True)): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }
    return text, samples


def sample(samples: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    value = samples.get((name, json.dumps(labels, sort_keys=True)))
    assert value is not None, f"no sample {name} {labels}"
    return value


def request_lines(proxy: RunningProxy) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proxy.log_lines() if '"event":"request"' in line]


async def test_duration_and_in_flight_move_under_load_and_the_shed_are_counted(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/api/v4/custom_fields/{tail:.*}", slow)
    backend = await start_app(app)
    proxy = await start_proxy(backend.make_url("/"), settings_file, max_in_flight=4)
    try:
        async def one() -> int:
            async with aiohttp.ClientSession() as own, own.get(f"{proxy.url}/api/v4/custom_fields/7.json") as r:
                await r.read()
                return r.status

        load = [asyncio.create_task(one()) for _ in range(6)]
        for _ in range(100):
            _, samples = await scrape(proxy, http)
            if sample(samples, "redaction_proxy_load_shed_total") == 2:
                break
            await asyncio.sleep(0.02)
        assert sample(samples, "redaction_proxy_requests_in_flight") == 4  # the four held by the backend
        assert sample(samples, "redaction_proxy_load_shed_total") == 2
        release.set()
        assert sorted(await asyncio.gather(*load)) == [200] * 4 + [503] * 2
        _, samples = await scrape(proxy, http)
        assert sample(samples, "redaction_proxy_requests_in_flight") == 0
        assert sample(samples, "redaction_proxy_request_duration_seconds_count",
                      route="passthrough", status_class="2xx") == 4
        assert sample(samples, "redaction_proxy_request_duration_seconds_count",
                      route="load_shed", status_class="5xx") == 2
        # The four that waited on the backend took longer than the two shed at once.
        assert sample(samples, "redaction_proxy_request_duration_seconds_sum",
                      route="passthrough", status_class="2xx") > 4 * 0.01
    finally:
        await proxy.close()
        await backend.close()


async def test_metrics_name_what_is_loaded_carry_process_metrics_and_no_created_series(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    script = Script(caller={"id": 2, "roles": []}, default_answer=(200, {"data": [], "meta": {"paging": {}}}))
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    try:
        for _ in range(2):
            async with http.get(f"{proxy.url}/api/v4/contacts.json?fields=id", headers=AUTH) as r:
                assert r.status == 200
        text, samples = await scrape(proxy, http)
        assert "_created" not in text
        assert any(name.startswith("process_") for name, _ in samples)
        loaded = proxy.services.live.current
        info = [labels for name, labels in samples if name == "redaction_proxy_build_info"]
        assert len(info) == 1
        labels = json.loads(info[0])
        assert labels["policy_version"] == loaded.policies.version
        assert labels["settings_version"] == loaded.settings_version
        assert labels["mode"] == "enforce" and labels["version"]
        assert sample(samples, "redaction_proxy_config_last_reload_successful") == 1
        assert sample(samples, "redaction_proxy_config_last_reload_timestamp_seconds") > 0
        # The caller is learnt once and then answered from the cache; the visible sets are crawled.
        assert sample(samples, "redaction_proxy_facts_cache_total", cache="who_am_i", result="miss") == 1
        assert sample(samples, "redaction_proxy_facts_cache_total", cache="who_am_i", result="hit") >= 1
        assert sample(samples, "redaction_proxy_facts_cache_total", cache="contacts", result="hit") == 1
        assert sample(samples, "redaction_proxy_facts_crawls_total", fact="relationships") == 1
    finally:
        await proxy.close()
        await backend.close()


async def test_request_lines_carry_client_relayed_path_bytes_and_warn_on_5xx(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def who_am_i(request: web.Request) -> web.Response:
        return web.json_response({"data": {"id": 3, "roles": []}})  # sees everything

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b"not json", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/api/v4/custom_fields/{tail:.*}", echo)
    app.router.add_get("/api/v4/users/who_am_i.json", who_am_i)
    app.router.add_get("/api/v4/activities/{tail:.*}", broken)
    backend = await start_app(app)
    proxy = await start_proxy(backend.make_url("/"), settings_file)
    try:
        async with http.post(f"{proxy.url}/api/v4/custom_fields/42/SecretName.json", data=b"x" * 1234) as r:
            assert r.status == 200, await r.text()
            assert len(await r.read()) == 1234
        async with http.get(f"{proxy.url}/api/v4/activities/5.json?fields=id", headers=AUTH) as r:
            assert r.status == 502
        relayed, refused = request_lines(proxy)
        assert relayed["route"] == "passthrough:/api/v4/custom_fields"  # no id, no name from deeper down
        assert relayed["client"] == "127.0.0.1"
        assert relayed["bytes_in"] == 1234
        assert relayed["bytes_out"] >= 1234
        assert relayed["level"] == "info"
        assert relayed["settings_version"] == proxy.services.live.current.settings_version
        assert refused["route"] == "/activities/{id}" and refused["status"] == 502
        assert refused["level"] == "warning"
        assert refused["bytes_out"] > 0
        assert all(json.loads(line).get("policy_version") for line in proxy.log_lines())
    finally:
        await proxy.close()
        await backend.close()
