"""Reads that could show what the rules hide (issue 9, classes 5, 6, 7, 9, 10, 13): a backend that
ignores `fields`, sends shapes the policy does not expect, repeats keys, answers with another record,
adds meta members, or leaves a participant's type out. Real sockets: scripted backend, real proxy.

Every index case runs buffered (Content-Length) and streamed (chunked), and, where it applies, as a
show answer: one policy on every path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app

CANARY = "CANARY-Rd9q"
SEALED = "<the proxy's tag>"
HOURS = 7777.5  # a hidden time entry's quantity
HIDDEN = {"id": 950, "name": CANARY, "type": "Person", "email": f"{CANARY}@example.com"}
HIDDEN_ENTRY = {"id": 41, "type": "TimeEntry", "quantity": HOURS, "user": {"id": 3}, "matter": {"id": 501}}
RESTRICTED, ALL_VISIBLE = 2, 1


@dataclass
class Rig:
    script: Script
    proxy: RunningProxy

    async def get(self, http: aiohttp.ClientSession, path: str, caller: int = RESTRICTED,
                  method: str = "GET") -> tuple[int, bytes]:
        self.script.caller = {"id": caller, "roles": []}
        kwargs: dict[str, Any] = {}
        if method == "PATCH":
            kwargs["json"] = {"data": {"first_name": "x"}}
        try:
            async with http.request(method, str(self.proxy.url) + path,
                                    headers={"Authorization": f"Bearer token-{caller}"}, **kwargs) as r:
                return r.status, await r.read()
        except aiohttp.ClientPayloadError:
            return -1, b""  # a streamed body cut off after it started

    def upstream_fields(self) -> str:
        from urllib.parse import parse_qs, urlsplit
        return parse_qs(urlsplit(self.script.forwarded[-1].path_qs).query).get("fields", ["id,etag"])[0]


@pytest.fixture(params=["enforce"])
async def rig(settings_file: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    script = Script(caller={"id": 2, "roles": []},
                    matters=[{"id": 500, "client": 900, "responsible_attorney": 2}])
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file, mode=request.param)
    yield Rig(script, proxy)
    await proxy.close()
    await backend.close()


def serve(body: bytes, *, chunked: bool) -> Any:
    """The backend's answer, exactly these bytes: with a Content-Length (a small index is parsed
    whole) or chunked (it streams record by record)."""
    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, content_type="application/json")
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        await out.prepare(request)
        for i in range(0, len(body), 7):  # small pieces: every boundary lands mid-token somewhere
            await out.write(body[i:i + 7])
        await out.write_eof()
        return out
    return handler


def index(*records: Any, meta: bytes = b'{"paging":{},"records":1}') -> bytes:
    return b'{"data":[' + b",".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records) + \
        b'],"meta":' + meta + b"}"


def show(record: Any) -> bytes:
    return b'{"data":' + (record if isinstance(record, bytes) else orjson.dumps(record)) + b"}"


PATHS = ["buffered", "streamed"]


async def answer(rig: Rig, http: aiohttp.ClientSession, path: str, body: bytes, how: str,
                 caller: int = RESTRICTED) -> tuple[int, bytes]:
    rig.script.fault = serve(body, chunked=how == "streamed")
    return await rig.get(http, path, caller)


def sealed(value: Any) -> Any:
    """The proxy's etags (`"rp.<mac>"`) replaced by one placeholder: their value is per key and caller."""
    if isinstance(value, dict):
        return {k: SEALED if k == "etag" and isinstance(v, str) and v.startswith('"rp.') else sealed(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [sealed(v) for v in value]
    return value


def clean(status: int, body: bytes) -> None:
    """No hidden name, e-mail or hours in what the client got."""
    assert CANARY.encode() not in body, body[:300]
    assert str(HOURS).encode() not in body, body[:300]


# --- class 5: members the client did not ask for are decided or removed --------------------------

IGNORED_FIELDS = [
    # (path, the backend's record, what the client must get)
    ("/api/v4/activities.json?fields=id,note",
     {**HIDDEN_ENTRY, "note": "n", "vendor": HIDDEN, "price": 1.5}, {"id": 41, "note": "n"}),
    # The hours rule is not decided without fields, but the backend's etag digests the hidden hours:
    # the proxy's own tag replaces it (tests/test_etag.py).
    ("/api/v4/activities.json",
     {**HIDDEN_ENTRY, "etag": "e", "vendor": HIDDEN}, {"id": 41, "etag": SEALED}),
    ("/api/v4/activities.json?fields=id,matter{id}",
     {"id": 41, "matter": {"id": 500, "client": HIDDEN}}, {"id": 41, "matter": {"id": 500}}),
    ("/api/v4/activities.json?fields=id,matter",
     {"id": 41, "matter": {"id": 500, "etag": "m", "client": HIDDEN}}, {"id": 41, "matter": {"id": 500, "etag": "m"}}),
    # No step reads a matter's client on activities: the sentinel (redact, the default) stubs it.
    ("/api/v4/activities.json?fields=id,matter{client}",
     {"id": 41, "matter": {"client": HIDDEN, "x": CANARY}},
     {"id": 41, "matter": {"client": {"id": 950, "type": "Person", "redacted": True}}}),
    ("/api/v4/calendar_entries.json?fields=id,time_entries",
     {"id": 7, "time_entries": [HIDDEN_ENTRY]}, {"id": 7, "time_entries": [{"id": 41, "type": "TimeEntry"}]}),
    ("/api/v4/calendar_entries.json?fields=id,summary",
     {"id": 7, "summary": "s", "time_entries": [HIDDEN_ENTRY], "attendees": [HIDDEN]}, {"id": 7, "summary": "s"}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id}",
     {"id": 500, "custom_field_values": [{"id": "c1", "contact": HIDDEN}]},
     {"id": 500, "custom_field_values": [{"id": "c1"}]}),
    ("/api/v4/communications.json?fields=id,senders{id,type}",
     {"id": 8, "senders": [{**HIDDEN, "name": CANARY}], "receivers": [HIDDEN]},
     {"id": 8, "senders": [{"id": 950, "type": "Person", "redacted": True}]}),
]


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("case", range(len(IGNORED_FIELDS)))
async def test_members_the_client_did_not_ask_for_never_pass(
    rig: Rig, http: aiohttp.ClientSession, case: int, how: str
) -> None:
    path, record, expected = IGNORED_FIELDS[case]
    status, body = await answer(rig, http, path, index(record), how)
    assert status == 200, body[:300]
    clean(status, body)
    assert sealed(orjson.loads(body)["data"]) == [expected]


@pytest.mark.parametrize("case", range(len(IGNORED_FIELDS)))
async def test_members_the_client_did_not_ask_for_never_pass_in_a_show_answer(
    rig: Rig, http: aiohttp.ClientSession, case: int
) -> None:
    path, record, expected = IGNORED_FIELDS[case]
    family, _, query = path.removeprefix("/api/v4/").partition(".json")
    status, body = await answer(rig, http, f"/api/v4/{family}/{record['id']}.json{query}", show(record), "show")
    assert status == 200, body[:300]
    clean(status, body)
    assert sealed(orjson.loads(body)["data"]) == expected


async def test_a_contact_answer_without_fields_is_id_and_etag(rig: Rig, http: aiohttp.ClientSession) -> None:
    record = {"id": 900, "etag": "e", "name": "Visible", "company": HIDDEN, "related_contacts": [HIDDEN]}
    status, body = await answer(rig, http, "/api/v4/contacts/900.json", show(record), "show")
    # The company and related contacts are not decided, but the contact's etag digests them: sealed.
    assert status == 200 and sealed(orjson.loads(body)) == {"data": {"id": 900, "etag": SEALED}}


@pytest.mark.parametrize("how", PATHS)
async def test_an_all_visible_caller_still_gets_the_backends_records(
    rig: Rig, http: aiohttp.ClientSession, how: str
) -> None:
    """No rule restricts this caller: records go out as the backend's bytes (the fast path)."""
    record = b'{"id":41, "note":"n",  "vendor":{"id":950}}'
    status, body = await answer(rig, http, "/api/v4/activities.json?fields=id,note", index(record), how,
                                caller=ALL_VISIBLE)
    assert status == 200 and record in body


# --- class 6: shapes the policy does not expect are refused ---------------------------------------

ODD_SHAPES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}",
     {"id": 500, "custom_field_values": [[{"id": "c", "contact": HIDDEN}]]}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}",
     {"id": 500, "custom_field_values": [CANARY]}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}",
     {"id": 500, "custom_field_values": {"id": "c", "contact": HIDDEN}}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}",
     {"id": 500, "custom_field_values": [{"id": "c", "contact": [HIDDEN]}]}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}", {"id": 500, "custom_field_values": [950]}),
    ("/api/v4/conversations.json?fields=id,memberships{id,member}",
     {"id": 6, "memberships": [[{"id": 1, "member": HIDDEN}]]}),
    ("/api/v4/conversations.json?fields=id,memberships{id,member}", {"id": 6, "memberships": [CANARY]}),
    ("/api/v4/activities.json?fields=id,vendor{id,name}", {"id": 41, "vendor": [HIDDEN]}),
    ("/api/v4/activities.json?fields=id,vendor{id,name}", {"id": 41, "vendor": CANARY}),
    ("/api/v4/activities.json?fields=id,vendor{id,name}", {"id": 41, "vendor": 950}),
    ("/api/v4/calendar_entries.json?fields=id,attendees{id,name,type}", {"id": 7, "attendees": [[HIDDEN]]}),
    ("/api/v4/calendar_entries.json?fields=id,attendees{id,name,type}", {"id": 7, "attendees": HIDDEN}),
    ("/api/v4/calendar_entries.json?fields=id,attendees{id,name,type}", {"id": 7, "attendees": [CANARY]}),
    ("/api/v4/tasks.json?fields=id,assignee{id,name,type}", {"id": 9, "assignee": [HIDDEN]}),
    ("/api/v4/calendar_entries.json?fields=id,time_entries{id,quantity}", {"id": 7, "time_entries": [[HIDDEN_ENTRY]]}),
    ("/api/v4/calendar_entries.json?fields=id,time_entries{id,quantity}", {"id": 7, "time_entries": HIDDEN_ENTRY}),
]


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("case", range(len(ODD_SHAPES)))
async def test_shapes_the_policy_does_not_expect_are_refused(
    rig: Rig, http: aiohttp.ClientSession, case: int, how: str
) -> None:
    path, record = ODD_SHAPES[case]
    status, body = await answer(rig, http, path, index(record), how)
    assert status in (-1, 502), body[:300]
    clean(status, body)


@pytest.mark.parametrize("case", range(len(ODD_SHAPES)))
async def test_shapes_the_policy_does_not_expect_are_refused_in_a_show_answer(
    rig: Rig, http: aiohttp.ClientSession, case: int
) -> None:
    path, record = ODD_SHAPES[case]
    family, _, query = path.removeprefix("/api/v4/").partition(".json")
    status, body = await answer(rig, http, f"/api/v4/{family}/{record['id']}.json{query}", show(record), "show")
    assert status == 502, body[:300]
    clean(status, body)


# --- class 7: a repeated key is refused, one policy on every path ---------------------------------

REPEATS = [
    ("/api/v4/contacts.json?fields=id,name", b'{"id":950,"name":"' + CANARY.encode() + b'","id":900}'),
    ("/api/v4/contacts.json?fields=id,name", b'{"id":950,"name":"' + CANARY.encode() + b'","\\u0069d":900}'),
    ("/api/v4/activities.json?fields=id,quantity",
     b'{"id":41,"type":"TimeEntry","quantity":7777.5,"user":{"id":3},"matter":{"id":501},"type":"ExpenseEntry"}'),
    ("/api/v4/activities.json?fields=id,quantity",
     b'{"id":41,"type":"TimeEntry","quantity":7777.5,"user":{"id":3,"id":2},"matter":{"id":501}}'),
    ("/api/v4/activities.json?fields=id,vendor{id,name}",
     b'{"id":41,"vendor":{"id":950,"name":"' + CANARY.encode() + b'","id":900}}'),
    ("/api/v4/activities.json?fields=id,note", b'{"id":41,"note":"' + CANARY.encode() + b'","note":"n"}'),
]


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("case", range(len(REPEATS)))
async def test_a_restricted_record_that_repeats_a_key_is_refused(
    rig: Rig, http: aiohttp.ClientSession, case: int, how: str
) -> None:
    path, record = REPEATS[case]
    status, body = await answer(rig, http, path, index(record), how)
    assert status in (-1, 502), body[:300]
    clean(status, body)


@pytest.mark.parametrize("case", range(len(REPEATS)))
async def test_a_show_answer_that_repeats_a_key_is_refused(rig: Rig, http: aiohttp.ClientSession, case: int) -> None:
    path, record = REPEATS[case]
    family, _, query = path.removeprefix("/api/v4/").partition(".json")
    ident = 900 if family == "contacts" else 41
    status, body = await answer(rig, http, f"/api/v4/{family}/{ident}.json{query}", show(record), "show")
    assert status == 502, body[:300]
    clean(status, body)


VISIBLE = {"id": 900, "name": "Visible Client"}
ENVELOPES = {
    "data twice": b'{"data":[' + orjson.dumps(HIDDEN) + b'],"data":[' + orjson.dumps(VISIBLE) + b"]}",
    "data twice, empty first": b'{"data":[],"data":[' + orjson.dumps(VISIBLE) + b"]}",
    "data twice, escaped": b'{"data":[' + orjson.dumps(HIDDEN) + b'],"d\\u0061ta":[' + orjson.dumps(VISIBLE) + b"]}",
    "meta twice": index(VISIBLE, meta=b'{"records":1}') [:-1] + b',"meta":{"facets":"' + CANARY.encode() + b'"}}',
    "meta repeats a key": index(VISIBLE, meta=b'{"records":1,"paging":{"next":"' + CANARY.encode()
                                + b'"},"paging":{}}'),
    "paging repeats a key": index(VISIBLE, meta=b'{"paging":{"next":"' + CANARY.encode() + b'","next":null}}'),
}


@pytest.mark.parametrize("caller", [RESTRICTED, ALL_VISIBLE], ids=["restricted", "all-visible"])
@pytest.mark.parametrize("name", list(ENVELOPES))
async def test_a_repeated_envelope_or_meta_member_is_refused_buffered_and_streamed_alike(
    rig: Rig, http: aiohttp.ClientSession, name: str, caller: int
) -> None:
    """The outcome does not depend on Content-Length (differential: the same bytes both ways)."""
    outcomes = []
    for how in PATHS:
        status, body = await answer(rig, http, "/api/v4/contacts.json?fields=id,name", ENVELOPES[name], how, caller)
        clean(status, body)
        outcomes.append(status in (-1, 502))
    assert outcomes == [True, True]


# --- class 9: the answer about one id is that record ----------------------------------------------

@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("caller", [RESTRICTED, ALL_VISIBLE], ids=["restricted", "all-visible"])
@pytest.mark.parametrize("fields", ["", "?fields=id,name", "?fields=name"])
async def test_a_show_answer_about_another_id_is_refused(
    rig: Rig, http: aiohttp.ClientSession, method: str, caller: int, fields: str
) -> None:
    rig.script.fault = serve(show(HIDDEN), chunked=False)
    rig.script.caller = {"id": caller, "roles": []}
    status, body = await rig.get(http, f"/api/v4/contacts/900.json{fields}", caller, method)
    assert status == 502, body[:300]
    clean(status, body)
    assert "id" in rig.upstream_fields().split(",")  # fetched even when the client left it out


@pytest.mark.parametrize("record", [{"name": CANARY}, {"id": "900", "name": CANARY}, {"id": 900.0, "name": CANARY},
                                    {"id": None, "name": CANARY}, {"id": True}])
async def test_a_show_answer_without_the_asked_id_is_refused(
    rig: Rig, http: aiohttp.ClientSession, record: dict[str, Any]
) -> None:
    status, body = await answer(rig, http, "/api/v4/contacts/900.json?fields=name", show(record), "show")
    assert status == 502 and CANARY.encode() not in body


async def test_the_asked_id_passes_and_goes_if_the_client_did_not_ask_for_it(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    status, body = await answer(rig, http, "/api/v4/contacts/900.json?fields=name",
                                show({"id": 900, "name": "Visible Client"}), "show")
    assert status == 200 and orjson.loads(body) == {"data": {"name": "Visible Client"}}
    assert rig.upstream_fields() == "name,id"


async def test_a_route_not_about_that_id_is_not_checked(rig: Rig, http: aiohttp.ClientSession) -> None:
    """/matters/500/client answers with the client, whose id is not 500."""
    status, body = await answer(rig, http, "/api/v4/matters/500/client.json?fields=id,name",
                                show(VISIBLE), "show")
    assert status == 200 and orjson.loads(body) == {"data": VISIBLE}


# --- class 10: meta keeps only what the proxy knows ------------------------------------------------

@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("caller", [RESTRICTED, ALL_VISIBLE], ids=["restricted", "all-visible"])
async def test_unknown_meta_members_are_dropped(
    rig: Rig, http: aiohttp.ClientSession, how: str, caller: int
) -> None:
    meta = orjson.dumps({"records": 1, "facets": {"names": [CANARY]}, "debug": CANARY,
                         "paging": {"previous": None, "cursor": CANARY}})
    status, body = await answer(rig, http, "/api/v4/activities.json?fields=id", index({"id": 41}, meta=meta), how,
                                caller)
    assert status == 200, body[:300]
    clean(status, body)
    assert orjson.loads(body)["meta"] == {"records": 1, "paging": {"previous": None}}


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("meta", [b'{"records":"1"}', b'{"records":[1]}', b'{"paging":{"next":5}}', b"[]"])
async def test_known_meta_members_of_the_wrong_kind_are_refused(
    rig: Rig, http: aiohttp.ClientSession, how: str, meta: bytes
) -> None:
    status, body = await answer(rig, http, "/api/v4/activities.json?fields=id", index({"id": 41}, meta=meta), how)
    assert status in (-1, 502), body[:300]


# --- class 13: participants selected without braces get their type asked for -----------------------

def _identity(participant: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in participant.items() if k in ("id", "etag")}


def participant_backend(record: dict[str, Any], key: str) -> Any:
    """A backend whose brace-less nested objects carry only id and etag (no type)."""
    async def handler(request: web.Request) -> web.Response:
        fields = request.query.get("fields", "")
        out = dict(record)
        if f"{key}{{" not in fields:
            value = out[key]
            out[key] = [_identity(p) for p in value] if isinstance(value, list) else _identity(value)
        return web.Response(body=index(out), content_type="application/json")
    return handler


@pytest.mark.parametrize("path,key,record", [
    ("/api/v4/tasks.json?fields=id,assignee", "assignee", {"id": 9, "assignee": {**HIDDEN, "etag": "a"}}),
    ("/api/v4/communications.json?fields=id,senders,receivers", "senders",
     {"id": 8, "senders": [{**HIDDEN, "etag": "a"}], "receivers": []}),
    ("/api/v4/calendar_entries.json?fields=id,attendees", "attendees",
     {"id": 7, "attendees": [{**HIDDEN, "type": "Contact", "etag": "a"}]}),
])
async def test_participants_without_braces_get_their_type_asked_for(
    rig: Rig, http: aiohttp.ClientSession, path: str, key: str, record: dict[str, Any]
) -> None:
    rig.script.fault = participant_backend(record, key)
    status, body = await rig.get(http, path)
    assert status == 200, body[:300]
    clean(status, body)
    assert f"{key}{{id,etag,type}}" in rig.upstream_fields()
    got = orjson.loads(body)["data"][0][key]
    stub = got[0] if isinstance(got, list) else got
    assert stub == {"id": 950, "type": HIDDEN["type"] if key != "attendees" else "Contact", "redacted": True}


# --- dry-run changes nothing: it does not shape, and a wrong record is logged, not refused ---------

@pytest.mark.parametrize("rig", ["dry-run"], indirect=True)
@pytest.mark.parametrize("how", PATHS)
async def test_dry_run_does_not_shape(rig: Rig, http: aiohttp.ClientSession, how: str) -> None:
    record = {"id": 41, "note": "n", "vendor": {"id": 900}}
    status, body = await answer(rig, http, "/api/v4/activities.json?fields=id,note", index(record), how)
    assert status == 200 and orjson.loads(body)["data"] == [record]


@pytest.mark.parametrize("rig", ["dry-run"], indirect=True)
async def test_dry_run_passes_another_record_as_undecidable(rig: Rig, http: aiohttp.ClientSession) -> None:
    status, body = await answer(rig, http, "/api/v4/contacts/900.json?fields=id,name", show(VISIBLE | {"id": 901}),
                                "show")
    assert status == 200 and orjson.loads(body)["data"]["id"] == 901
    assert "another record" in rig.proxy.logs.getvalue()


@pytest.mark.parametrize("how", PATHS)
@pytest.mark.parametrize("path,record,expected", [
    # A visible client selected without braces keeps its own members (the rule judged it), but a
    # contact a backend nested inside it keeps only the nested defaults.
    ("/api/v4/matters.json?fields=id,client",
     {"id": 500, "client": {"id": 900, "name": "Visible Client", "company": HIDDEN}},
     {"id": 500, "client": {"id": 900, "name": "Visible Client", "company": {"id": 950, "type": "Person"}}}),
    ("/api/v4/matters.json?fields=id,custom_field_values{id,contact}",
     {"id": 500, "custom_field_values": [{"id": "c1", "contact": {"id": 900, "company": HIDDEN}}]},
     {"id": 500, "custom_field_values": [{"id": "c1", "contact": {"id": 900, "company": {"id": 950,
                                                                                          "type": "Person"}}}]}),
])
async def test_objects_nested_in_a_visible_contact_keep_only_the_defaults(
    rig: Rig, http: aiohttp.ClientSession, how: str, path: str, record: dict[str, Any], expected: dict[str, Any]
) -> None:
    status, body = await answer(rig, http, path, index(record), how)
    assert status == 200, body[:300]
    clean(status, body)
    assert orjson.loads(body)["data"] == [expected]


@pytest.mark.parametrize("how", PATHS)
async def test_a_field_the_schema_does_not_know_is_decided_on_a_hidden_time_entry(
    rig: Rig, http: aiohttp.ClientSession, how: str
) -> None:
    """`fields=id,quantity_v2` names no hours field, yet a newer backend's `quantity_v2` can carry the
    hours: a hidden entry keeps only the Activity schema's fields, whatever the client selected."""
    record = {**HIDDEN_ENTRY, "quantity_v2": HOURS}
    status, body = await answer(rig, http, "/api/v4/activities.json?fields=id,quantity_v2", index(record), how)
    assert status == 200, body[:300]
    clean(status, body)
    assert orjson.loads(body)["data"] == [{"id": 41, "quantity_redacted": True}]


async def test_a_two_step_place_left_out_of_the_braces_is_undecided_and_its_etags_sealed(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    """`matter_bill_recipients{id,etag}` leaves the recipient out: the bill recipients rule decides
    nothing there, and the etags that digest the recipient are the proxy's, not the backend's."""
    record = {"id": 500, "etag": "e", "matter_bill_recipients": [{"id": 7, "etag": "r", "recipient": HIDDEN}]}
    path = "/api/v4/matters.json?fields=id,etag,matter_bill_recipients%7Bid,etag%7D"
    status, body = await answer(rig, http, path, index(record), "buffered")
    assert status == 200, body[:300]
    clean(status, body)
    got = orjson.loads(body)["data"][0]
    assert got["etag"].startswith('"rp.') and got["matter_bill_recipients"][0]["etag"].startswith('"rp.')
    assert "recipient" not in got["matter_bill_recipients"][0]


async def test_a_link_header_names_the_clients_fields_on_the_proxys_origin(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    """The backend's `Link` carries the fields the proxy asked for (`assignee{id,etag,type}`): the client
    gets its own (`assignee`), on the proxy's origin, every Link line of it."""
    origin = str(rig.proxy.services.upstream.origin)
    links = [f'<{origin}/api/v4/tasks.json?fields=id,assignee%7Bid,etag,type%7D&page_token=n>; rel="next"',
             '<https://docs.example/tasks>; rel="help"']
    body = index({"id": 7, "assignee": {"id": 2, "type": "User"}})

    async def linked(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=body, content_type="application/json")
        for link in links:
            response.headers.add("Link", link)
        return response

    rig.script.fault = linked
    async with http.get(f"{rig.proxy.url}/api/v4/tasks.json?fields=id,assignee",
                        headers={"Authorization": f"Bearer token-{RESTRICTED}"}) as r:
        assert r.status == 200
        got = r.headers.getall("Link")
    assert got == [f'<{rig.proxy.url}/api/v4/tasks.json?fields=id,assignee&page_token=n>; rel="next"', links[1]]
