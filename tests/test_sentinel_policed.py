"""The sentinel on policed answers (issue 10, item 3, second half), over real sockets: a scripted
backend whose policed answers hold a contact hidden from the restricted user 2 at a place the client
selected and no policy step reads (`fields=id,matter{id,client}` on activities)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from proxy.decide import make_plan
from proxy.facts.settings import load_settings
from proxy.policy.fields import parse_fields
from proxy.policy.load import bundled_policies, load_policies
from proxy.policy.model import Route
from proxy.sentinel import GapScan, Place
from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

CANARY = "CANARY-Gap-Zq7"
HIDDEN, VISIBLE = 950, 900
ACTIVITIES = "/api/v4/activities.json"
MATTER_CLIENT = "fields=id,matter%7Bid,etag,client%7D"
RESTRICTED_AUTH = {"Authorization": "Bearer token-2"}
BACKEND_TAG = "backend-matter-tag"


def activity(n: int, client: int) -> dict[str, Any]:
    """User 2's own expense: no hours or rate rule decides it; its matter's client is the place no step reads."""
    return {"id": n, "type": "ExpenseEntry", "user": {"id": 2},
            "matter": {"id": 500, "etag": BACKEND_TAG, "client": {"id": client, "name": CANARY, "type": "Person"}}}


def page() -> dict[str, Any]:
    return {"data": [activity(1, HIDDEN), activity(2, VISIBLE)], "meta": {"paging": {}, "records": 2}}


@dataclass
class Rig:
    script: Script
    backend: Any
    proxy: RunningProxy

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    def gap(self, route: str, path: str) -> float:
        value = self.proxy.services.metrics.registry.get_sample_value(
            "redaction_proxy_policy_gap_total", {"route": route, "path": path})
        return value or 0.0

    def gap_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.proxy.log_lines() if '"event":"policy_gap"' in line]


@pytest.fixture
async def rigs(settings_file: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Rig] = []

    async def make(caller: int = 2, **options: Any) -> Rig:
        script = Script(caller={"id": caller, "roles": []},
                        matters=[{"id": 500, "client": VISIBLE, "responsible_attorney": 2}])
        script.answers[("GET", ACTIVITIES)] = (200, page())
        backend = await start_app(make_scripted_app(script))
        proxy = await start_proxy(backend.make_url("/"), settings_file, **options)
        rig = Rig(script, backend, proxy)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.proxy.close()
        await rig.backend.close()


async def fetch(rig: Rig, http: aiohttp.ClientSession, target: str, auth: dict[str, str] = RESTRICTED_AUTH
                ) -> tuple[int, bytes]:
    async with http.get(rig.url(target), headers=auth) as r:
        return r.status, await r.read()


async def test_report_counts_and_logs_once_and_changes_nothing(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    off, report = await rigs(sentinel="off"), await rigs(sentinel="report")
    target = f"{ACTIVITIES}?{MATTER_CLIENT}"
    status, expected = await fetch(off, http, target)
    assert status == 200
    for _ in range(2):
        status, body = await fetch(report, http, target)
        assert status == 200 and body == expected  # report changes nothing
    assert report.gap("/activities", "data[].matter.client") == 2  # one hidden client a page, two pages
    lines = report.gap_lines()
    assert [(line["route"], line["path"], line["outcome"]) for line in lines] == [
        ("/activities", "data[].matter.client", "reported")]  # logged once per (route, path)
    assert lines[0]["request_id"]
    assert not any(CANARY in line or str(HIDDEN) in line for line in report.proxy.log_lines()
                   if '"event":"policy_gap"' in line)
    assert off.gap("/activities", "data[].matter.client") == 0 and off.gap_lines() == []


async def test_redact_stubs_the_hidden_contact_and_reseals_its_holder(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel="redact")
    status, raw = await fetch(rig, http, f"{ACTIVITIES}?{MATTER_CLIENT}")
    assert status == 200
    first, second = orjson.loads(raw)["data"]
    assert first["matter"]["client"] == {"id": HIDDEN, "type": "Person", "redacted": True}
    assert second["matter"]["client"] == {"id": VISIBLE, "type": "Person"}  # visible: as shaped
    # The matter's etag digests its client's name: it becomes the proxy's tag (the visible one's stays).
    assert first["matter"]["etag"] != BACKEND_TAG and second["matter"]["etag"] == BACKEND_TAG
    assert CANARY.encode() not in raw
    assert rig.gap("/activities", "data[].matter.client") == 1
    assert [line["outcome"] for line in rig.gap_lines()] == ["redacted"]


async def test_a_streamed_index_and_a_show_answer_are_scanned_too(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel="redact")
    body = orjson.dumps(page())

    async def chunked(request: web.Request) -> web.StreamResponse:
        if request.path != ACTIVITIES:
            return web.json_response({"data": activity(7, HIDDEN)})  # the show route
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        out.enable_chunked_encoding()  # no length: streamed record by record
        await out.prepare(request)
        for i in range(0, len(body), 50):
            await out.write(body[i:i + 50])
        await out.write_eof()
        return out

    rig.script.fault = chunked
    status, raw = await fetch(rig, http, f"{ACTIVITIES}?{MATTER_CLIENT}")
    assert status == 200
    assert orjson.loads(raw)["data"][0]["matter"]["client"]["redacted"] is True
    status, raw = await fetch(rig, http, f"/api/v4/activities/7.json?{MATTER_CLIENT}")
    assert status == 200
    assert orjson.loads(raw)["data"]["matter"]["client"] == {"id": HIDDEN, "type": "Person", "redacted": True}
    assert rig.gap("/activities", "data[].matter.client") == 1
    assert rig.gap("/activities/{id}", "data.matter.client") == 1


async def test_dry_run_reports_and_sends_the_backends_bytes(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel="redact", mode="dry-run")
    status, raw = await fetch(rig, http, f"{ACTIVITIES}?{MATTER_CLIENT}")
    assert status == 200 and orjson.loads(raw) == page()
    assert rig.gap("/activities", "data[].matter.client") == 1
    assert [line["outcome"] for line in rig.gap_lines()] == ["reported"]


async def test_an_all_visible_caller_is_never_scanned(rigs: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    rig = await rigs(caller=1, sentinel="redact")
    status, raw = await fetch(rig, http, f"{ACTIVITIES}?{MATTER_CLIENT}", {"Authorization": "Bearer token-1"})
    assert status == 200
    assert orjson.loads(raw)["data"][0]["matter"]["client"]["name"] == CANARY  # theirs to see
    assert rig.gap("/activities", "data[].matter.client") == 0 and rig.gap_lines() == []


async def test_inside_a_decided_contact_nothing_is_scanned_twice(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """`vendor{id,company}`: the vendor is the rule's; what it holds is the sentinel's, unless the rule
    stubs the vendor (in dry-run it is left in place, and still not reported a second time)."""
    def record(n: int, vendor: int) -> dict[str, Any]:
        return {"id": n, "type": "ExpenseEntry", "user": {"id": 2},
                "vendor": {"id": vendor, "type": "Person", "company": {"id": HIDDEN, "type": "Company"}}}

    target = f"{ACTIVITIES}?fields=id,vendor%7Bid,type,company%7D"
    answer = (200, {"data": [record(1, HIDDEN), record(2, VISIBLE)], "meta": {"paging": {}, "records": 2}})
    for mode in ("enforce", "dry-run"):
        rig = await rigs(sentinel="redact", mode=mode)
        rig.script.answers[("GET", ACTIVITIES)] = answer
        status, raw = await fetch(rig, http, target)
        assert status == 200
        # Only the visible vendor's hidden company is a gap: the hidden vendor is the rule's.
        assert rig.gap("/activities", "data[].vendor.company") == 1, mode
        if mode == "enforce":
            hidden, shown = orjson.loads(raw)["data"]
            assert hidden["vendor"] == {"id": HIDDEN, "type": "Person", "redacted": True}
            assert shown["vendor"]["company"] == {"id": HIDDEN, "type": "Company", "redacted": True}


async def test_a_route_no_step_reads_is_scanned_and_its_bytes_kept_when_nothing_is_found(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """/contacts/{id}/email_addresses has no respond rule: its records are not even parsed, except for the
    sentinel when the client selected a place that could hold a contact."""
    path = "/api/v4/contacts/900/email_addresses.json"
    for sentinel in ("report", "redact"):
        rig = await rigs(sentinel=sentinel)
        clean = {"data": [{"id": 1, "address": "a@b.example", "owner": {"id": VISIBLE,  "type": "Person"}}],
                 "meta": {"paging": {}, "records": 1}}
        rig.script.answers[("GET", path)] = (200, clean)
        status, raw = await fetch(rig, http, f"{path}?fields=id,address,owner")
        assert status == 200 and raw == orjson.dumps(clean)
        dirty = {"data": [{"id": 1, "owner": {"id": HIDDEN, "name": CANARY, "type": "Person"}}],
                 "meta": {"paging": {}, "records": 1}}
        rig.script.answers[("GET", path)] = (200, dirty)
        status, raw = await fetch(rig, http, f"{path}?fields=id,owner")
        owner = orjson.loads(raw)["data"][0]["owner"]
        assert (CANARY not in raw.decode()) is (sentinel == "redact")
        assert owner.get("redacted") is (True if sentinel == "redact" else None)
        assert rig.gap("/contacts/{contact_id}/email_addresses", "data[].owner") == 1


# --- the plan's derived list, and the pure scan ------------------------------------------------------

@pytest.fixture(scope="module")
def routes() -> dict[str, Route]:
    return {r.template: r for r in load_policies(bundled_policies()).routes}


def test_the_plans_unread_places(routes: dict[str, Route], settings_file: Path) -> None:
    settings = load_settings(settings_file)
    restricted, everyone = settings.for_caller(2, ()), settings.for_caller(1, ())

    def unread(route: str, fields: str | None, who: Any = restricted) -> tuple[Place, ...]:
        return make_plan(routes[route], who, parse_fields(fields) if fields else None).unread

    assert unread("/activities", "id,matter{id,client}") == (Place("matter", "client"),)
    assert unread("/activities", "id,client,user") == (Place("client"),)  # no binding names client
    assert unread("/activities", "id,vendor{id,name,company}") == (Place("vendor", "company"),)
    assert unread("/activities", "id,widget{id}") == (Place("widget"),)  # unknown to the spec: could be one
    # Most plans have none: nothing per record (the default selection, a wide one, a bound two-step place).
    assert unread("/activities", None) == ()
    wide = ("id,etag,type,date,quantity,price,total,note,matter{id,display_number},user{id,name},"
            "activity_description{id,name},vendor{id,name,type},calendar_entry,communication,task")
    assert unread("/activities", wide) == ()
    assert unread("/matters", "id,client{id,name},custom_field_values{id,contact}") == ()
    # An all-visible caller's plans have none, whatever was selected.
    assert unread("/activities", "id,matter{id,client}", everyone) == ()


def test_gap_scan_spares_stubs_and_names_paths_by_template() -> None:
    record = {"id": 1, "matter": {"id": 5, "client": {"id": HIDDEN, "name": "****", "type": "Person",
                                                      "redacted": True}},
              "parties": [{"id": HIDDEN, "type": "Contact"}, {"id": VISIBLE, "type": "Contact"}]}
    gaps = GapScan(lambda contact_id: contact_id != VISIBLE, redact=True)
    changed = gaps.check(record, "data[4]", (Place("matter", "client"), Place("parties")))
    assert [(f.path, f.object_id) for f in gaps.found] == [("data[].parties[]", HIDDEN)]  # a stub is no finding
    assert record["parties"] == [{"id": HIDDEN, "type": "Contact", "redacted": True},
                                 {"id": VISIBLE, "type": "Contact"}]
    assert record in changed and gaps.redacted == 1
    # A backend's stub-lookalike that carries a name is no stub.
    fake = {"matter": {"client": {"id": HIDDEN, "name": CANARY, "type": "Person", "redacted": True}}}
    report = GapScan(lambda contact_id: True, redact=False)
    assert report.check(fake, "data", (Place("matter", "client"),)) == []
    assert [f.path for f in report.found] == ["data.matter.client"] and fake["matter"]["client"]["name"] == CANARY
