"""Dry-run never breaks traffic: what it cannot decide is logged, counted, and passed on."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from tests.support.harness import start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

AUTH = {"Authorization": "Bearer token-2"}


async def test_undecidable_requests_pass_in_dry_run_and_fail_in_enforce(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    script = Script(caller={"id": 2, "roles": []}, default_answer=(201, {"data": {"id": 1}}))
    backend = await start_app(make_scripted_app(script))
    dry = await start_proxy(backend.make_url("/"), settings_file, mode="dry-run")
    enforce = await start_proxy(backend.make_url("/"), settings_file)
    bom = b'\xef\xbb\xbf{"data":{"vendor":{"id":5}}}'
    try:
        async with http.post(f"{enforce.url}/api/v4/activities.json", data=bom,
                             headers={**AUTH, "Content-Type": "application/json"}) as r:
            assert r.status == 400
        assert not script.forwarded
        async with http.post(f"{dry.url}/api/v4/activities.json", data=bom,
                             headers={**AUTH, "Content-Type": "application/json"}) as r:
            assert r.status == 201
        assert script.forwarded[-1].body == bom  # passed on as it came: nothing was decided on it
        script.facts_down = True
        async with http.get(f"{dry.url}/api/v4/activities.json", headers=AUTH) as r:
            assert r.status == 201  # the backend's own answer, facts or not
        async with http.get(f"{enforce.url}/api/v4/activities.json", headers=AUTH) as r:
            assert r.status == 503
        lines = [json.loads(line) for line in dry.log_lines() if '"event":"request"' in line]
        assert [line["undecidable"] is not None for line in lines] == [True, True]
        count = dry.services.metrics.registry.get_sample_value(
            "redaction_proxy_undecidable_total", {"route": "/activities", "mode": "dry-run"})
        assert count == 2
    finally:
        await dry.close()
        await enforce.close()
        await backend.close()


async def test_a_write_with_a_query_parameter_passes_in_dry_run_and_is_refused_in_enforce(
    settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """A policed write takes no parameter but `fields` (a reference moved to the query is not checked):
    enforce refuses it before the backend; dry-run passes it on, logged as undecidable."""
    script = Script(caller={"id": 2, "roles": []}, default_answer=(201, {"data": {"id": 1}}))
    backend = await start_app(make_scripted_app(script))
    dry = await start_proxy(backend.make_url("/"), settings_file, mode="dry-run")
    enforce = await start_proxy(backend.make_url("/"), settings_file)
    body = b'{"data":{"subject":"s"}}'
    try:
        for proxy, status in ((enforce, 400), (dry, 201)):
            async with http.post(f"{proxy.url}/api/v4/notes.json?contact_id=950", data=body,
                                 headers={**AUTH, "Content-Type": "application/json"}) as r:
                assert r.status == status
        assert [r.path_qs for r in script.forwarded] == ["/api/v4/notes.json?contact_id=950"]
        lines = [json.loads(line) for line in dry.log_lines() if '"event":"request"' in line]
        assert lines[-1]["undecidable"] is not None
    finally:
        await dry.close()
        await enforce.close()
        await backend.close()
