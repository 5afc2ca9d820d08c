"""One body contract (issue 13, item 2): the same backend bytes give the same outcome on every path.

The show, buffered-index and streamed-index responders run the pure functions of proxy/body.py; a
body read whole (Content-Length up to BUFFER_INDEX_BELOW) and the same body streamed in any chunks
must give the same records and meta, or both be refused, for a caller no rule touches, a restricted
caller (enforce) and the same caller in dry-run. A single record as a show answer `{"data": {...}}`
gives the record that index gives, or is refused the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.body import NO_META, IndexStream, Judging, index_whole, show_body
from proxy.decide import Bound, Decision, make_plan
from proxy.errors import ProxyError
from proxy.facts.settings import Settings
from proxy.facts.viewer import Viewer
from proxy.jsonkeys import refuse_repeated_keys
from proxy.policy.fields import parse_fields
from proxy.policy.load import load_policies
from tests.conftest import ALL, RESTRICTED
from tests.support.harness import POLICIES, start_app, start_proxy
from tests.support.scripted import Script, make_scripted_app
from tests.test_reads import serve

ROUTE = next(r for r in load_policies(POLICIES).routes if r.template == "/communications")
SETTINGS = Settings(ALL, {}, {2: RESTRICTED}, "test")
FIELDS = "id,subject,etag,senders{id,type,name,etag},receivers{id,type,name}"
CONTACT_IDS = (100, 101, 102, 103)
VISIBLE = frozenset({100, 101})


def _bound(user: int) -> Bound:
    who = Viewer(user, ("Attorney",), SETTINGS.for_caller(user, ("Attorney",)), VISIBLE, frozenset())
    return make_plan(ROUTE, who.settings, parse_fields(FIELDS), index=True).bind(who)


UNTOUCHED, RESTRICTED_BOUND = _bound(1), _bound(2)
CALLERS = [(UNTOUCHED, True), (RESTRICTED_BOUND, True), (RESTRICTED_BOUND, False)]
REFUSED = "refused"


def test_the_callers_take_each_path() -> None:
    assert not UNTOUCHED.plan.touches and RESTRICTED_BOUND.plan.touches and RESTRICTED_BOUND.plan.steps


def _seal(etag: str) -> str:
    return "sealed:" + etag


def _whole(raw: bytes, bound: Bound, enforce: bool) -> Any:
    notes: list[Decision] = []
    try:
        index = index_whole(raw, Judging(bound, enforce, notes.extend, _seal))
    except ProxyError:
        return REFUSED
    return index.data, None if index.meta is NO_META else index.meta, len(notes)


def _streamed(raw: bytes, cuts: list[int], bound: Bound, enforce: bool) -> Any:
    notes: list[Decision] = []
    stream = IndexStream(Judging(bound, enforce, notes.extend, _seal), max_element=1 << 20)
    out: list[bytes] = []
    try:
        last = 0
        for cut in [*sorted({c % (len(raw) + 1) for c in cuts}), len(raw)]:
            out += stream.feed(raw[last:cut])
            last = cut
        out += stream.finish()
    except ProxyError:
        return REFUSED
    return b"[" + b",".join(out) + b"]", None if stream.meta is NO_META else stream.meta, len(notes)


def _show(raw: bytes, bound: Bound, enforce: bool) -> Any:
    try:
        return show_body(raw, Judging(bound, enforce, lambda _: None, _seal)).body
    except ProxyError:
        return REFUSED


# --- odd bodies ------------------------------------------------------------------------------------

_WS = st.sampled_from(["", "", " ", "\n", "\t ", "\r\n  "])


@st.composite
def _participant(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Person", "Company", "User"]))
    ident = draw(st.sampled_from(CONTACT_IDS))
    return {"id": ident, "type": kind, "name": f"N\u00e9-{ident}\\\"", "etag": f"e{ident}"}


@st.composite
def _record(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from([1, "x", [], None]))  # not an object
    record: dict[str, Any] = {"id": draw(st.integers(1, 50)), "subject": draw(st.text(max_size=4)),
                              "etag": "r", "senders": draw(st.lists(_participant(), max_size=3)),
                              "receivers": draw(st.lists(_participant(), max_size=2))}
    return record


def _encode(value: Any, draw: st.DrawFn) -> bytes:
    """JSON with drawn whitespace, escaped spellings of keys and, rarely, a repeated key."""
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            name = json.dumps(key)
            if draw(st.integers(0, 9)) == 0:
                name = '"' + "".join(f"\\u{ord(c):04x}" if i == 0 else c for i, c in enumerate(key)) + '"'
            members.append(name.encode() + draw(_WS).encode() + b":" + draw(_WS).encode() + _encode(item, draw))
            if draw(st.integers(0, 30)) == 0:
                members.append(members[-1])  # the same key again
        return b"{" + draw(_WS).encode() + b",".join(members) + draw(_WS).encode() + b"}"
    if isinstance(value, list):
        return b"[" + (b"," + draw(_WS).encode()).join(_encode(v, draw) for v in value) + b"]"
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def index_bodies(draw: st.DrawFn) -> bytes:
    records = draw(st.lists(_record(), max_size=4))
    members: list[tuple[str, bytes]] = [("data", _encode(records, draw))]
    if draw(st.booleans()):
        meta = {"paging": {"next": "https://b.example/api/v4/x?page_token=1"}, "records": len(records)}
        members.append(("meta", _encode(meta, draw)))
    odd = draw(st.integers(0, 9))
    if odd == 0:
        members.append(("data", _encode(draw(st.lists(_record(), max_size=2)), draw)))  # a second data
    elif odd == 1:
        members.append(("meta", b"{}"))  # a second meta
    elif odd == 2:
        members.append(("facets", b'{"names":["x"]}'))  # a member the envelope does not have
    elif odd == 3:
        members.append(("d\\u0061ta", b"[]"))  # `data` spelled with an escape
    members = draw(st.permutations(members))
    ws = draw(_WS).encode()
    body = ws + b"{" + b",".join(ws + b'"' + k.encode() + b'"' + ws + b":" + ws + v + ws for k, v in members) + b"}"
    tail = draw(st.sampled_from([b"", b"", b"\n", b" x", b"}"]))
    return body + tail


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index_bodies(), st.lists(st.integers(0, 4000), max_size=6), st.sampled_from(range(len(CALLERS))))
def test_whole_and_streamed_index_agree(raw: bytes, cuts: list[int], caller: int) -> None:
    bound, enforce = CALLERS[caller]
    assert _whole(raw, bound, enforce) == _streamed(raw, cuts, bound, enforce)


def _draw_encoded(value: Any) -> st.SearchStrategy[bytes]:
    @st.composite
    def encoded(draw: st.DrawFn) -> bytes:
        return _encode(value, draw)
    return encoded()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(range(len(CALLERS))))
def test_a_show_answer_is_decided_as_its_index_record(data: st.DataObject, caller: int) -> None:
    bound, enforce = CALLERS[caller]
    body = data.draw(_record().flatmap(_draw_encoded))
    show = _show(b'{"data":' + body + b"}", bound, enforce)
    index = _whole(b'{"data":[' + body + b"]}", bound, enforce)
    if not bound.plan.touches and index != REFUSED and show == REFUSED:
        # The one difference, by design: a show answer's record is always read (its id is checked,
        # its etag sealed), so a key it repeats is refused; an index record no rule reads is not read.
        assert orjson.dumps(orjson.loads(body)) != body and _repeats(body)
    elif index == REFUSED or index[0] == b"[]":
        assert show == REFUSED  # refused on both, or dropped from an index: a single object cannot be
    else:
        assert show != REFUSED
        assert orjson.loads(show)["data"] == orjson.loads(index[0])[0]
        if not bound.plan.touches or not enforce:
            assert show == b'{"data":' + body + b"}" and index[0] == b"[" + body + b"]"  # the backend's bytes


def _repeats(raw: bytes) -> bool:
    try:
        refuse_repeated_keys(raw, orjson.loads(raw), "x")
    except ProxyError:
        return True
    return False


@pytest.mark.parametrize(("caller", "name"), [(0, "untouched"), (1, "enforce"), (2, "dry-run")])
@pytest.mark.parametrize("body", [
    b'{"data":[{"id":1}],"data":[{"id":2}]}',        # the duplicate-data envelope
    b'{"data":[],"meta":{},"meta":{"records":1}}',
    b'{"d\\u0061ta":[{"id":1}],"data":[]}',
    b'{"data":[{"id":1,"id":2}]}',                   # a record that repeats a key
])
def test_a_repeat_gets_one_answer_everywhere(caller: int, name: str, body: bytes) -> None:
    bound, enforce = CALLERS[caller]
    whole, streamed = _whole(body, bound, enforce), _streamed(body, [7], bound, enforce)
    assert whole == streamed
    repeats_in_record = re.search(rb'"id":1,"id"', body) is not None
    if repeats_in_record and not bound.plan.touches:
        assert whole != REFUSED  # no rule reads these records: they go out as the backend's bytes
    else:
        assert whole == REFUSED


# --- through the real proxy: dry-run passes the backend's bytes on both index paths ----------------

@pytest.mark.parametrize("how", ["buffered", "streamed"])
async def test_dry_run_sends_the_backends_record_bytes_on_both_paths(
    how: str, settings_file: Path, http: aiohttp.ClientSession
) -> None:
    """A restricted caller's index in dry-run: decided (and logged), never re-encoded, whether the
    backend sent a Content-Length (read whole) or chunks (streamed). Before the body contract, the
    whole path re-encoded the records (their whitespace and escapes were lost)."""
    record = b'{ "id" : 7, "subject": "caf\\u00e9",\n "senders" : [ {"id": 950, "type": "Person", "name": "N"} ] }'
    body = b'{"data": [' + record + b"]}"
    script = Script(caller={"id": 2, "roles": []})
    script.fault = serve(body, chunked=how == "streamed")
    backend = await start_app(make_scripted_app(script))
    proxy = await start_proxy(backend.make_url("/"), settings_file, mode="dry-run")
    try:
        async with http.get(f"{proxy.url}/api/v4/communications.json?fields=id,subject,senders{{id,type,name}}",
                            headers={"Authorization": "Bearer token-2"}) as r:
            assert r.status == 200
            got = await r.read()
        assert got == b'{"data":[' + record + b"]}"
        decided = [s for f in proxy.services.metrics.registry.collect() if f.name == "redaction_proxy_decisions"
                   for s in f.samples if s.name.endswith("_total")]
        assert [(s.labels["mode"], s.labels["route"], s.value) for s in decided] == [
            ("dry-run", "/communications", 1.0)]  # the hidden sender was decided (logged, not applied)
    finally:
        await proxy.close()
        await backend.close()
