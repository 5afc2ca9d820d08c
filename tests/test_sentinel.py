"""The sentinel (issue 10, item 3) and relayed paging links (item 5), over real sockets: a scripted
backend with an endpoint no policy covers that returns a contact hidden from the restricted user 2."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from proxy.config import ConfigValueError, build_config
from proxy.http.relay_links import TAIL_BYTES, PagingLinkRewriter, rewrite_paging_links
from proxy.sentinel import OVERFLOW, Ledger, SentinelMode, route_template, scan
from tests.conftest import ALL, write_settings
from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, is_facts_query, make_scripted_app

CANARY = "CANARY-Sentinel-Qx9"
HIDDEN, VISIBLE = 950, 900
UNPOLICED = "/api/v4/legacy_widgets.json"
RESTRICTED_AUTH = {"Authorization": "Bearer token-2"}


def widgets(next_link: str | None = None) -> dict[str, Any]:
    paging = {"next": next_link} if next_link else {}
    return {
        "data": [
            {"id": 1, "contact": {"id": HIDDEN, "name": CANARY, "type": "Person"},
             "owner": {"id": VISIBLE, "name": "Visible Client", "type": "Company"}},
            {"id": 2, "recipients": [{"id": HIDDEN, "name": CANARY, "type": "Contact"},
                                     {"id": 7, "name": "A User", "type": "User"}]},
        ],
        "meta": {"paging": paging, "records": 2},
    }


@dataclass
class Rig:
    script: Script
    backend: Any
    proxy: RunningProxy

    @property
    def origin(self) -> str:
        return str(self.backend.make_url("/")).rstrip("/")

    def url(self, path: str) -> str:
        return str(self.proxy.url) + path

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.proxy.services.metrics.registry.get_sample_value(name, labels or {})
        return value or 0.0

    def gap(self, path: str) -> float:
        return self.metric("redaction_proxy_policy_gap_total", {"route": "/legacy_widgets", "path": path})

    def facts_queries(self) -> list[str]:
        return [r.path_qs for r in self.script.received if is_facts_query(r.path_qs)]


@pytest.fixture
async def rigs(settings_file: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Rig] = []

    async def make(caller: int = 2, settings: Path = settings_file, **options: Any) -> Rig:
        script = Script(caller={"id": caller, "roles": []},
                        matters=[{"id": 500, "client": VISIBLE, "responsible_attorney": 2}])
        backend = await start_app(make_scripted_app(script))
        proxy = await start_proxy(backend.make_url("/"), settings, **options)
        rig = Rig(script, backend, proxy)
        script.answers[("GET", UNPOLICED)] = (200, widgets())
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.proxy.close()
        await rig.backend.close()


def gap_lines(rig: Rig) -> list[dict[str, Any]]:
    return [json.loads(line) for line in rig.proxy.log_lines() if '"event":"policy_gap"' in line]


async def test_report_mode_counts_and_logs_once_and_changes_nothing(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel="report")
    expected = orjson.dumps(widgets())
    for _ in range(2):
        async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
            assert r.status == 200
            assert await r.read() == expected  # report only: the backend's bytes
    assert rig.gap("data[].contact") == 2 and rig.gap("data[].recipients[]") == 2
    lines = gap_lines(rig)
    assert sorted(line["path"] for line in lines) == ["data[].contact", "data[].recipients[]"]  # once per pair
    assert {line["route"] for line in lines} == {"/legacy_widgets"}
    assert all(line["request_id"] and line["outcome"] == "reported" for line in lines)
    assert not any(CANARY in line for line in rig.proxy.log_lines())


async def test_redact_mode_stubs_hidden_contacts_only(rigs: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    rig = await rigs(sentinel="redact")
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 200
        raw = await r.read()
        assert r.headers["Cache-Control"] == "private"
        assert int(r.headers["Content-Length"]) == len(raw)
    assert CANARY.encode() not in raw
    body = orjson.loads(raw)
    first, second = body["data"]
    assert first["contact"] == {"id": HIDDEN, "name": "****", "type": "Person", "redacted": True}
    assert first["owner"] == {"id": VISIBLE, "name": "Visible Client", "type": "Company"}
    assert second["recipients"] == [{"id": HIDDEN, "name": "****", "type": "Contact", "redacted": True},
                                    {"id": 7, "name": "A User", "type": "User"}]
    assert rig.gap("data[].contact") == 1
    assert [line["outcome"] for line in gap_lines(rig)] == ["redacted", "redacted"]
    assert not any(CANARY in line for line in rig.proxy.log_lines())


async def test_redact_in_dry_run_only_reports(rigs: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    rig = await rigs(sentinel="redact", mode="dry-run")
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert await r.read() == orjson.dumps(widgets())
    assert rig.gap("data[].contact") == 1


async def test_off_scans_nothing_and_asks_no_facts(rigs: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    rig = await rigs(sentinel="off")
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert await r.read() == orjson.dumps(widgets())
    assert rig.facts_queries() == []
    assert rig.metric("redaction_proxy_sentinel_scanned_total") == 0 and rig.gap("data[].contact") == 0


async def test_an_all_visible_caller_is_never_scanned(
    rigs: Callable[..., Any], http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rig = await rigs(caller=1, sentinel="redact")
    for _ in range(3):
        async with http.get(rig.url(UNPOLICED), headers={"Authorization": "Bearer token-1"}) as r:
            assert await r.read() == orjson.dumps(widgets())
    # Who the caller is must be known (once per facts TTL); their visible sets are never crawled.
    assert [q.partition("?")[0] for q in rig.facts_queries()] == ["/api/v4/users/who_am_i.json"]
    assert rig.metric("redaction_proxy_sentinel_scanned_total") == 0
    # When the settings restrict no one, not even who_am_i is asked.
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    calm = await rigs(caller=2, settings=write_settings(nobody, {2: ALL}), sentinel="redact")
    async with http.get(calm.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert await r.read() == orjson.dumps(widgets())
    assert calm.facts_queries() == []


async def test_facts_unavailable_fails_closed_in_redact_and_is_counted_in_report(
    rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    redact, report = await rigs(sentinel="redact"), await rigs(sentinel="report")
    for rig in (redact, report):
        rig.script.facts_down = True
    async with http.get(redact.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 503 and CANARY.encode() not in await r.read()
    async with http.get(report.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 200
    assert report.metric("redaction_proxy_sentinel_unscanned_total", {"reason": "facts_unavailable"}) == 1


async def _chunked(body: bytes, request: web.Request, *, piece: int = 4096, headers: dict[str, str] | None = None
                   ) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": "application/json", **(headers or {})})
    out.enable_chunked_encoding()
    await out.prepare(request)
    for i in range(0, len(body), piece):
        await out.write(body[i:i + piece])
    await out.write_eof()
    return out


@pytest.mark.parametrize("sentinel", ["report", "redact"])
async def test_a_gzip_answer_is_scanned_too(
    sentinel: str, rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel=sentinel)
    packed = gzip.compress(orjson.dumps(widgets()))

    async def fault(request: web.Request) -> web.StreamResponse:
        return web.Response(body=packed, headers={"Content-Type": "application/json", "Content-Encoding": "gzip",
                                                  "ETag": '"backend"'})

    rig.script.fault = fault
    async with http.get(rig.url(UNPOLICED), headers={**RESTRICTED_AUTH, "Accept-Encoding": "gzip"}) as r:
        body = orjson.loads(await r.read())
        etag = r.headers.get("ETag")
    assert rig.gap("data[].contact") == 1
    if sentinel == "redact":
        assert body["data"][0]["contact"]["name"] == "****" and etag is None
    else:
        assert body == widgets() and etag == '"backend"'


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_an_oversize_body_is_relayed_unscanned_and_counted(
    framing: str, rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel="redact", sentinel_max_body=1000)
    big = widgets()
    big["data"].extend({"id": 10 + i, "note": "x" * 100} for i in range(50))
    body = orjson.dumps(big)
    if framing == "chunked":
        async def fault(request: web.Request) -> web.StreamResponse:
            return await _chunked(body, request, piece=300)
        rig.script.fault = fault
    else:
        rig.script.answers[("GET", UNPOLICED)] = (200, big)
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 200 and await r.read() == body
    assert rig.metric("redaction_proxy_sentinel_unscanned_total", {"reason": "too_large"}) == 1
    assert rig.gap("data[].contact") == 0


@pytest.mark.parametrize("sentinel", ["off", "redact"])
async def test_a_moved_link_keeps_its_encoding_and_the_answer_its_length(
    sentinel: str, rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """A public origin longer than the backend's and a query the backend percent-encoded (`%7B`): the
    link moves with its query as it was, and the answer is not cut at the backend's Content-Length."""
    public = "http://redaction-proxy.public.example:8443"
    rig = await rigs(sentinel=sentinel, public_origin=public)
    link = f"{rig.origin}/api/v4/legacy_widgets.json?fields=id,vendor%7Bid,name%7D&page_token=abc"
    body = orjson.dumps(widgets(link))

    async def whole(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    rig.script.fault = whole
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 200
        got = orjson.loads(await r.read())  # whole: a stale Content-Length would cut it short
    query = "fields=id,vendor%7Bid,name%7D&page_token=abc"
    assert got["meta"]["paging"]["next"] == f"{public}/api/v4/legacy_widgets.json?{query}"


@pytest.mark.parametrize("sentinel", ["off", "redact"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_relayed_index_next_link_names_the_proxy(
    sentinel: str, framing: str, rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    rig = await rigs(sentinel=sentinel)
    link = f"{rig.origin}/api/v4/legacy_widgets.json?page_token=abc&limit=2"
    doc = widgets(link)
    doc["meta"]["paging"]["previous"] = "https://elsewhere.example/api/v4/x.json"  # not the backend: unchanged
    body = orjson.dumps(doc)
    header = {"Link": f'<{link}>; rel="next"'}
    if framing == "chunked":
        async def fault(request: web.Request) -> web.StreamResponse:
            return await _chunked(body, request, piece=7, headers=header)
        rig.script.fault = fault
    else:
        async def whole(request: web.Request) -> web.StreamResponse:
            return web.Response(body=body, content_type="application/json", headers=header)
        rig.script.fault = whole
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        assert r.status == 200
        got = orjson.loads(await r.read())
        link_header = r.headers["Link"]
    moved = f"{rig.proxy.url}/api/v4/legacy_widgets.json?page_token=abc&limit=2"
    assert got["meta"]["paging"] == {"next": moved, "previous": "https://elsewhere.example/api/v4/x.json"}
    assert link_header == f'<{moved}>; rel="next"'
    assert rig.origin not in json.dumps(got)
    async with http.get(moved, headers=RESTRICTED_AUTH) as r:  # following it stays on the proxy
        assert r.status == 200


@pytest.mark.parametrize("options", [{"sentinel": "off"}, {"sentinel": "redact", "sentinel_max_body": 1000}])
async def test_a_large_relayed_json_body_streams(
    options: dict[str, Any], rigs: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    """The client has the first bytes while the backend still holds the rest back: never buffered whole."""
    rig = await rigs(**options)
    released = asyncio.Event()
    record = orjson.dumps({"id": 1, "note": "y" * 1000})
    first = b'{"data":[' + b",".join([record] * 400)  # ~400 KB, past the rewriter's held tail
    rest_records = b"," + b",".join([record] * 2000)
    tail = b'],"meta":{"paging":{"next":"' + f"{rig.origin}/api/v4/legacy_widgets.json?page_token=z".encode() + b'"}}}'

    async def fault(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        out.enable_chunked_encoding()
        await out.prepare(request)
        await out.write(first)
        await asyncio.wait_for(released.wait(), 10)
        await out.write(rest_records)
        await out.write(tail)
        await out.write_eof()
        return out

    rig.script.fault = fault
    async with http.get(rig.url(UNPOLICED), headers=RESTRICTED_AUTH) as r:
        got = b""
        while len(got) < len(first) - TAIL_BYTES:
            got += await asyncio.wait_for(r.content.readany(), 5)
        released.set()
        got += await r.read()
    assert got.startswith(first) and got.endswith(
        f'"meta":{{"paging":{{"next":"{rig.proxy.url}/api/v4/legacy_widgets.json?page_token=z"}}}}}}'.encode())
    assert len(got) == len(first) + len(rest_records) + len(tail) - len(rig.origin) + len(str(rig.proxy.url))


# --- the pure core ---------------------------------------------------------------------------

def test_route_templates_are_bounded() -> None:
    base = ("api", "v4")
    assert route_template(("api", "v4", "clio_payments", "links", "12"), base) == "/clio_payments/links/{id}"
    assert route_template(("api", "v4", "a", "1", "b", "2", "c"), base) == "/a/{id}/b/..."
    assert route_template(("api", "v4", "Weird Name!", "9"), base) == "/{x}/{id}"
    assert route_template(("oauth", "token"), base) == "!/oauth/token"


def test_scan_paths_collapse_indexes_and_odd_keys() -> None:
    doc = {"data": [{"matter_bill_recipients": [{"recipient": {"id": 5, "name": "n"}}]},
                    {"by_id": {"77": {"id": 5, "type": "Company"}}},
                    {"user": {"id": 5, "type": "User"}}, {"client": {"id": 6}}]}
    out, findings = scan(doc, lambda i: i == 5, redact=True)
    assert {f.path for f in findings} == {"data[].matter_bill_recipients[].recipient", "data[].by_id.{key}"}
    assert out["data"][0]["matter_bill_recipients"][0]["recipient"] == {"id": 5, "name": "****", "redacted": True}
    assert out["data"][2]["user"] == {"id": 5, "type": "User"}  # a user is not a contact
    root, found = scan({"id": 5, "type": "Person", "name": "x"}, lambda i: True, redact=True)
    assert root == {"id": 5, "type": "Person", "name": "****", "redacted": True} and found[0].path == "."
    deep: Any = {"id": 5, "type": "Person"}
    for _ in range(5000):
        deep = [deep]
    assert len(scan(deep, lambda i: True, redact=False)[1]) == 1  # no recursion limit


def test_the_ledger_keeps_labels_a_closed_set() -> None:
    ledger = Ledger(limit=2)
    assert ledger.label("/a", "x") == (("/a", "x"), True)
    assert ledger.label("/a", "x") == (("/a", "x"), False)
    assert ledger.label("/b", "x") == (("/b", "x"), True)
    assert ledger.label("/c", "x") == ((OVERFLOW, OVERFLOW), True)
    assert ledger.label("/d", "y") == ((OVERFLOW, OVERFLOW), False)


UP, PUB = URL("http://backend:3000"), URL("https://proxy.example")


@pytest.mark.parametrize("body", [
    b'{"data":{"id":1,"meta":{"paging":{"next":"http://backend:3000/x"}}}}',    # not the root's meta
    b'[{"meta":{"paging":{"next":"http://backend:3000/x"}}}]',                  # root is a list
    b'{"data":[],"meta":{"paging":{"next":"http://other:3000/x"}}}',            # another origin
    b'{"x":"\\"meta\\":{\\"paging\\":{\\"next\\":\\"http://backend:3000/x\\"}}}"}',  # inside a string
    b'{"x\\"meta":{"paging":{"next":"http://backend:3000/x"}}}',               # a key ending in meta
    b'{"data":[],"meta":{"paging":{"next":"http://backend:3000/x"}},"meta":{}}',  # repeated meta
    b'{"data":[],"meta":{"paging":{"next":"http://backend:3000/x"}}',           # cut off
])
def test_only_the_root_meta_paging_links_move(body: bytes) -> None:
    assert rewrite_paging_links(body, UP, PUB) == body


def test_paging_links_move_in_any_chunking() -> None:
    doc = {"data": [{"id": i, "s": 'a"b\\ "meta":{', "meta": {"paging": {"next": "http://backend:3000/y"}}}
                    for i in range(3000)],
           "meta": {"paging": {"next": "http://backend:3000/api/v4/w.json?page_token=a", "previous": None},
                    "records": 3}}
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    whole = rewrite_paging_links(raw, UP, PUB)
    moved = orjson.loads(whole)
    assert moved["data"] == doc["data"]
    assert moved["meta"]["paging"]["next"] == "https://proxy.example/api/v4/w.json?page_token=a"
    for size in (1, 997, 65536, 300_000):
        rewriter = PagingLinkRewriter(UP, PUB)
        pieces = [rewriter.feed(raw[i:i + size]) for i in range(0, len(raw), size)]
        assert b"".join(pieces) + rewriter.finish() == whole
        assert max(len(p) for p in pieces) <= max(size, TAIL_BYTES) + size  # held back: the tail only


def test_sentinel_flags_and_their_environment_variable() -> None:
    args = argparse.Namespace(upstream="http://b:1", settings="s.yaml")
    assert build_config(args, environ={}).sentinel is SentinelMode.REDACT
    assert build_config(args, environ={"REDACTION_PROXY_SENTINEL": "report"}).sentinel is SentinelMode.REPORT
    assert build_config(args, environ={"REDACTION_PROXY_SENTINEL_MAX_BODY": "10"}).sentinel_max_body == 10
    with pytest.raises(ConfigValueError, match="--sentinel: 'loud'"):
        build_config(argparse.Namespace(upstream="http://b:1", settings="s.yaml", sentinel="loud"), environ={})
