"""Shadowing a candidate policy set (--shadow-policies / --shadow-settings) over real sockets: the demo
backend, two real proxies (one without a candidate, one with), a real client. The candidate's
differences are exactly what it changes and nothing else; the client's answers are byte-identical to
a run without it; the backend gets the same requests; a reload swaps the candidate too, and a broken
one keeps the old candidate.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from demo_backend import REQUESTS_KEY, generate_firm, make_app
from proxy.cli import main
from proxy.http.state import SERVICES
from proxy.reloader import Reloader
from proxy.serve import load, load_shadow
from tests.conftest import RESTRICTED, write_settings
from tests.support.harness import POLICIES, RunningProxy, start_app, start_proxy

KEY = "k" * 40  # one ETag key for both proxies, so their tags (and bodies) can be compared
ACTIVITIES = "/api/v4/activities.json?fields=id,type,quantity,price,total,user{id},matter{id}&limit=100"
VENDORS = "/api/v4/activities.json?fields=id,type,vendor{id,name,type},user{id},matter{id}&limit=100"
SHOW = "/api/v4/activities/ID.json?fields=id,price,total,user{id},vendor{id,name,type}"
REQUESTS = (
    ACTIVITIES, VENDORS, SHOW,
    "/api/v4/communications.json?fields=id,senders{id,name,type},receivers{id,name,type}&limit=50",
    "/api/v4/contacts.json?fields=id,name&limit=100",
    "/api/v4/custom_fields.json",  # relayed by both sets
)


def auth(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{user}", "Accept-Encoding": "identity"}


async def fetch(http: aiohttp.ClientSession, proxy: RunningProxy, path: str, user: int) -> tuple[int, bytes, str]:
    """Status, body and ETag; the proxy's own origin (in paging links) is the one byte run that may differ."""
    async with http.get(f"{proxy.url}{path}", headers=auth(user)) as r:
        return r.status, (await r.read()).replace(str(proxy.url).encode(), b"PROXY"), r.headers.get("ETag", "")


def events(proxy: RunningProxy, name: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, proxy.log_lines()) if e["event"] == name]


def differences(proxy: RunningProxy) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for event in events(proxy, "shadow"):
        for d in event["differences"]:
            out[(d["route"], d["rule"], d["kind"])] += d["records"]
    return out


async def metric_lines(http: aiohttp.ClientSession, proxy: RunningProxy, name: str) -> list[str]:
    async with http.get(f"{proxy.admin_url}/metrics") as r:
        return [line for line in (await r.text()).splitlines() if line.startswith(name)]


async def run_both(tmp_path: Path, shadow: dict[str, Any], users: tuple[int, ...]) -> dict[str, Any]:
    """The same requests, as each user, through a proxy without a candidate and one with it."""
    firm = generate_firm(scale=1)
    plain_backend, shadow_backend = await start_app(make_app(firm)), await start_app(make_app(firm))
    # An activity of a matter every user here can see, so the one shown by id is answered to each.
    shown = next(i for i, a in sorted(firm.activities.items())
                 if a.get("matter") and a.get("price") and all(firm.can_access(u, a["matter"]["id"]) for u in users))
    settings = write_settings(tmp_path, {2: RESTRICTED})
    plain = await start_proxy(plain_backend.make_url("/"), settings, etag_key=KEY)
    shadowed = await start_proxy(shadow_backend.make_url("/"), settings, etag_key=KEY, **shadow)
    answers: dict[tuple[str, int], Any] = {}
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            for user in users:
                for path in REQUESTS:
                    path = path.replace("/ID.", f"/{shown}.")
                    a, b = await fetch(http, plain, path, user), await fetch(http, shadowed, path, user)
                    assert a == b, f"{path} as user {user}: the candidate changed the client's answer"
                    answers[(path, user)] = json.loads(a[1]) if a[0] == 200 else None
            shadow_metrics = await metric_lines(http, shadowed, "redaction_proxy_shadow_differences_total")
            async with http.get(f"{shadowed.admin_url}/report") as r:
                report = await r.json()
        backend_calls = ([r.path_qs for r in plain_backend.app[REQUESTS_KEY]],
                         [r.path_qs for r in shadow_backend.app[REQUESTS_KEY]])
        return {"answers": answers, "proxy": shadowed, "plain": plain, "metrics": shadow_metrics,
                "report": report, "backend": backend_calls, "diffs": differences(shadowed),
                "log": shadowed.log_lines()}
    finally:
        await plain.close()
        await shadowed.close()
        await plain_backend.close()
        await shadow_backend.close()


async def test_a_candidate_hiding_one_more_field_shows_exactly_that_and_changes_no_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "candidate").mkdir()
    candidate = write_settings(tmp_path / "candidate", {2: RESTRICTED, 3: {"billing_rate_visibility": "none"}})
    run = await run_both(tmp_path, {"shadow_settings": candidate}, users=(1, 2, 3))
    # The backend was asked exactly the same things: no extra call, no added field.
    assert run["backend"][0] == run["backend"][1]
    # User 3 alone would lose price and total, on every activity of the answers that select them (not the
    # vendors page, which asks for neither); nothing else, for no one else.
    page = run["answers"][(ACTIVITIES, 3)]["data"]
    shown = next(v for (p, u), v in run["answers"].items() if u == 3 and p.startswith("/api/v4/activities/"))
    assert len(page) > 5 and shown is not None and "price" in shown["data"]
    expected = len(page) + 1
    assert run["diffs"] == {
        ("/activities", "billing_rate_visibility", "would_redact_only_shadow"): len(page),
        ("/activities/{id}", "billing_rate_visibility", "would_redact_only_shadow"): 1,
    }
    lines = events(run["proxy"], "shadow")
    assert {e["user_id"] for e in lines} == {3}
    first = next(e for e in lines if e["route"] == "/activities")
    assert first["differences"][0]["paths"] == [f"data[{i}]" for i in range(5)]
    # Paths only, never a value: no price of user 3's answer is in any shadow line.
    prices = {str(a["price"]) for a in page if a.get("price") not in (None, 0)}
    assert prices and not any(p in json.dumps(e["differences"]) for e in lines for p in prices if len(p) > 3)
    assert sorted(run["metrics"]) == sorted([
        f'redaction_proxy_shadow_differences_total{{kind="would_redact_only_shadow",route="/activities",'
        f'rule="billing_rate_visibility"}} {float(len(page))}',
        'redaction_proxy_shadow_differences_total{kind="would_redact_only_shadow",route="/activities/{id}",'
        'rule="billing_rate_visibility"} 1.0',
    ])
    # The report, live and offline from the log lines, has the same section.
    rows = {(r["route"], r["rule"], r["kind"]): r["records"] for r in run["report"]["shadow_differences"]}
    assert rows == dict(run["diffs"])
    assert run["report"]["totals"]["shadow_differences"] == expected
    log = tmp_path / "replica.log"
    log.write_text("\n".join(run["log"]) + "\n")
    assert main(["report", str(log), "--json"], environ={}) == 0
    offline = json.loads(capsys.readouterr().out)
    assert offline["shadow_differences"] == run["report"]["shadow_differences"]
    assert main(["report", str(log)], environ={}) == 0
    assert "Shadow differences" in capsys.readouterr().out


def _candidate_policies(tmp_path: Path, drop: str) -> Path:
    """The bundled policies with the one activities binding whose seed is `drop` left out."""
    directory = tmp_path / "candidate-policies"
    shutil.copytree(POLICIES, directory)
    path = directory / "activities.yaml"
    lines = [line for line in path.read_text().splitlines() if drop not in line]
    path.write_text("\n".join(lines) + "\n")
    return directory


async def test_a_candidate_dropping_a_binding_shows_the_live_sets_decisions_only_there(tmp_path: Path) -> None:
    candidate = _candidate_policies(tmp_path, '"4.0.9 activities GET vendor"')
    run = await run_both(tmp_path, {"shadow_policies": candidate}, users=(1, 2))
    assert run["backend"][0] == run["backend"][1]
    # User 2's hidden vendors: the live set redacted them (the stub), the candidate would not have.
    stubbed = [f"data[{i}].vendor" for i, a in enumerate(run["answers"][(VENDORS, 2)]["data"])
               if isinstance(a.get("vendor"), dict) and a["vendor"].get("redacted")]
    assert stubbed
    assert run["diffs"] == {("/activities", "contacts_visibility", "would_redact_only_live"): len(stubbed)}
    (line,) = [e for e in events(run["proxy"], "shadow")]
    assert line["user_id"] == 2 and line["differences"][0]["paths"] == stubbed[:5]
    assert line["shadow_policy_version"] != line["policy_version"]


async def test_the_candidate_reloads_with_the_live_set_and_a_broken_one_is_kept_and_reported(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    settings = write_settings(tmp_path, {2: RESTRICTED})
    candidate = _candidate_policies(tmp_path, '"4.0.9 activities GET vendor"')
    proxy = await start_proxy(backend.make_url("/"), settings, shadow_policies=candidate)
    try:
        app = proxy.server.app
        config = app[SERVICES].config
        reloader = Reloader(app, lambda: load(config.policies, config.settings), config.policies, config.settings,
                            shadow=lambda: load_shadow(config), shadow_files=(candidate, settings))

        async def loaded() -> dict[str, Any]:
            async with http.get(f"{proxy.admin_url}/policies") as r:
                body: dict[str, Any] = await r.json()
                return body

        first = await loaded()
        assert first["shadow"]["policy_version"] != first["policy_version"]
        assert first["shadow"]["last_reload"]["successful"] is True
        # The candidate now equals the live set: after a reload it decides the same, no difference left.
        shutil.copy(POLICIES / "activities.yaml", candidate / "activities.yaml")
        assert await reloader.reload("signal")
        second = await loaded()
        assert second["shadow"]["policy_version"] == second["policy_version"]
        async with http.get(f"{proxy.url}{VENDORS}", headers=auth(2)) as r:
            assert r.status == 200
        assert not events(proxy, "shadow")
        # A broken candidate: the live set still reloads, the old candidate keeps deciding, and it is said.
        (candidate / "activities.yaml").write_text("family: activities\nroutes: [{route: 5}]\n")
        assert await reloader.reload("signal")
        third = await loaded()
        assert third["shadow"]["policy_version"] == second["shadow"]["policy_version"]
        assert third["shadow"]["last_reload"]["successful"] is False and third["shadow"]["last_reload"]["problems"]
        assert third["last_reload"]["successful"] is True
        assert 'redaction_proxy_config_reloads_total{outcome="shadow_failure"} 1.0' in await metric_lines(
            http, proxy, "redaction_proxy_config_reloads_total")
        assert any(json.loads(line)["event"] == "shadow_reload_failed_keeping_old_candidate"
                   for line in proxy.log_lines())
        async with http.get(f"{proxy.url}{VENDORS}", headers=auth(2)) as r:
            assert r.status == 200
        assert not events(proxy, "shadow")
    finally:
        await proxy.close()
        await backend.close()


async def test_a_write_the_candidate_would_refuse_is_counted_and_still_forwarded(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    settings = write_settings(tmp_path, {})
    (tmp_path / "c").mkdir()
    candidate = write_settings(tmp_path / "c", {3: RESTRICTED})
    proxy = await start_proxy(backend.make_url("/"), settings, shadow_settings=candidate)
    try:
        hidden = sorted(firm.contacts)[-1]
        matter = next(m for m in firm.matters if firm.can_access(3, m))
        payload = {"data": {"name": "t", "matter": {"id": matter}, "assignee": {"id": hidden, "type": "Contact"}}}
        visible_to_3 = await proxy.services.facts.viewer("Bearer token-3", proxy.services.live.current.policies,
                                                         proxy.services.live.current.shadow.settings)  # type: ignore[union-attr]
        assert visible_to_3.visible_contacts is not None and hidden not in visible_to_3.visible_contacts
        async with http.post(f"{proxy.url}/api/v4/tasks.json", json=payload, headers=auth(3)) as r:
            assert r.status == 201  # the live set lets it through; the candidate's refusal is never applied
        assert differences(proxy) == {("/tasks", "contacts_visibility", "refuse_only_shadow"): 1}
        assert not events(proxy, "blocked")
    finally:
        await proxy.close()
        await backend.close()


def test_a_broken_candidate_stops_the_start_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = write_settings(tmp_path, {})
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"defaults": {"contacts_visibility": "sometimes"}}))
    code = main(["serve", "--upstream", "http://127.0.0.1:9", "--settings", str(settings),
                 "--shadow-settings", str(broken), "--listen", "127.0.0.1:0"], environ={})
    assert code == 2
    assert "shadow:" in capsys.readouterr().err


async def test_a_candidate_needing_a_field_the_live_request_lacks_is_undecidable_and_adds_nothing(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    settings = write_settings(tmp_path, {})
    (tmp_path / "c").mkdir()
    candidate = write_settings(tmp_path / "c", {3: {"billing_rate_visibility": "own"}})  # reads user{id}
    proxy = await start_proxy(backend.make_url("/"), settings, shadow_settings=candidate)
    try:
        async with http.get(f"{proxy.url}/api/v4/activities.json?fields=id,price,total&limit=20",
                            headers=auth(3)) as r:
            assert r.status == 200
        assert differences(proxy) == {("/activities", "-", "undecidable"): 1}
        # Known before any record was read (from the plans), not found missing in the first record.
        assert events(proxy, "shadow")[0]["differences"][0]["paths"] == []
        asked = [q.path_qs for q in backend.app[REQUESTS_KEY] if q.path_qs.startswith("/api/v4/activities")]
        assert asked and all("user" not in q for q in asked)  # the live request was not augmented for it
    finally:
        await proxy.close()
        await backend.close()
