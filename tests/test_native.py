"""The compiled scanner (proxy/_scan.pyx) decides as the pure path does (issue 14).

- A differential property: random activity records, written in many spellings (key order, whitespace,
  escapes, repeated keys, odd numbers, missing, null and unknown members, big ids, wrong shapes), give
  the same bytes and the same decisions (step, path, object id) on both paths, or the same refusal.
- Over real sockets: the demo backend behind two proxies, `--native require` and `--native off`, gives
  byte-identical answers for restricted and all-visible callers on the policed indexes.
- Which path ran: the scanner answers every record of a real page (no fallback), the start-up line
  names it, and without the extension the proxy says so and `--native require` refuses to start.

In CI (CI or REQUIRE_NATIVE set) the extension must have been built: a missing build fails here.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_backend import generate_firm, make_app
from proxy import native
from proxy.body import IndexStream, Judging
from proxy.decide import Bound, Decision, make_plan
from proxy.envelope import split_index
from proxy.etag import Sealer
from proxy.facts.settings import load_settings
from proxy.facts.viewer import Viewer
from proxy.policy.fields import parse_fields
from proxy.policy.load import load_policies
from tests.conftest import write_settings
from tests.support.harness import RunningProxy, start_app, start_proxy
from tests.support.process import spawn_proxy
from tests.support.scan_differ import differ

REPO = Path(__file__).resolve().parents[1]
REQUIRED = bool(os.environ.get("CI") or os.environ.get("REQUIRE_NATIVE"))
pytestmark = pytest.mark.skipif(not native.available() and not REQUIRED,
                                reason=f"the compiled scanner is not built: {native.UNAVAILABLE}")

ROUTES = {r.template: r for r in load_policies(REPO / "policies").routes}
SETTINGS = load_settings(REPO / "deploy" / "demo-settings.yaml")
SEAL = Sealer.of(b"k" * 32, "caller", "v1").record_tag
ACTIVITY_FIELDS = ("id,etag,type,date,quantity,rounded_quantity,quantity_in_hours,price,total,note,"
                   "quantity_redacted,matter{id,display_number},user{id,name},vendor{id,name,type},calendar_entry")


def bound_for(template: str, fields: str, *, user: int = 2, visible: frozenset[int] = frozenset({7, 8}),
              responsible: frozenset[int] = frozenset({20001})) -> Bound:
    settings = SETTINGS.for_caller(user, ())
    plan = make_plan(ROUTES[template], settings, parse_fields(fields), index=True)
    return plan.bind(Viewer(user, (), settings, visible, responsible))


ACTIVITIES = bound_for("/activities", ACTIVITY_FIELDS)
CONTACTS = bound_for("/contacts", "id,name,type,etag")
LINE_ITEMS = bound_for("/line_items", "id,etag,activity{id,quantity,etag,user,matter,type},total,price")
ATTENDEES = bound_for("/calendar_entries", "id,etag,attendees{id,type,name,etag}")
CUSTOM_VALUES = bound_for("/matters", "id,etag,custom_field_values{id,field_type,contact,value}")
BOUNDS = {"activities": ACTIVITIES, "contacts": CONTACTS, "line_items": LINE_ITEMS}


def agree(bound: Bound, raw: bytes) -> None:
    """Both paths give the same bytes and decisions, or the scanner fell back (tests/support/scan_differ.py)."""
    found = differ(bound, SEAL, raw)
    assert found is None, f"{raw!r}: {found}"


# -- the differential property ------------------------------------------------------------------

ids = st.one_of(st.integers(1, 40), st.integers(2**31, 2**53), st.just(2**63 - 1))
refs = st.one_of(st.none(), st.fixed_dictionaries({"id": ids}), st.fixed_dictionaries({"id": ids, "name": st.text()}),
                 st.just({"id": "7"}), st.just({"name": "x"}), st.just([1]), st.just(True))
vendors = st.one_of(st.none(), st.fixed_dictionaries(
    {"id": ids}, optional={"name": st.text(max_size=8), "type": st.sampled_from(["Person", "Company", "User", 5]),
                           "etag": st.just('"v1"'), "email": st.text(max_size=5),
                           "nested": st.just({"id": 3, "x": 1})}))
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 10**6),
                    st.sampled_from([0.0, -0.0, 0.1, 7.3, 26280.0, 1e-7, 1e16, 123456789.123456789]))
activity = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "etag": st.one_of(st.just('"abc"'), st.text(max_size=6), st.just(5)),
        "type": st.sampled_from(["TimeEntry", "ExpenseEntry", "timeentry", "", 3]),
        "user": refs, "matter": refs, "vendor": vendors, "quantity": numbers, "rounded_quantity": numbers,
        "quantity_in_hours": numbers, "price": numbers, "total": numbers, "quantity_redacted": st.booleans(),
        "redacted": st.booleans(), "note": st.text(max_size=12), "quantity_v2": numbers,
        "calendar_entry": st.one_of(st.none(), st.just({"id": 4, "etag": '"c"', "summary": "s"}),
                                    st.just([[{"id": 1}]])),
        "date": st.just("2024-01-02"),
    },
)


def spell(record: dict[str, Any], how: str) -> bytes:
    """One record written one of many ways a backend might."""
    if how == "orjson":
        return orjson.dumps(record)
    if how == "spaced":
        return json.dumps(record, indent=1, ensure_ascii=False).encode()
    if how == "ascii":
        return json.dumps(record, ensure_ascii=True).encode()  # \\u escapes: the pure path decides
    if how == "reversed":
        return orjson.dumps(dict(reversed(list(record.items()))))
    if how == "repeated":  # the first member again, last: a repeated key
        key, value = next(iter(record.items()))
        return orjson.dumps(record)[:-1] + b"," + orjson.dumps(key) + b":" + orjson.dumps(value) + b"}"
    if how == "slash":
        return orjson.dumps(record).replace(b"/", b"\\/")
    if how == "trailing-zero":
        return orjson.dumps(record).replace(b".0,", b".50,")
    raise AssertionError(how)


SPELLINGS = ["orjson", "spaced", "ascii", "reversed", "repeated", "slash", "trailing-zero"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=activity, how=st.sampled_from(SPELLINGS), where=st.sampled_from(["activities", "line_items"]))
def test_both_paths_answer_alike(record: dict[str, Any], how: str, where: str) -> None:
    if where == "line_items":
        record = {"id": record["id"], "etag": '"li"', "activity": record, "total": 5.0}
    agree(BOUNDS[where], spell(record, how))


@settings(max_examples=200, deadline=None)
@given(contact=st.fixed_dictionaries({"id": ids}, optional={"name": st.text(max_size=6), "type": st.text(max_size=7),
                                                               "etag": st.text(max_size=4), "company": vendors}),
       how=st.sampled_from(SPELLINGS))
def test_both_paths_filter_contacts_alike(contact: dict[str, Any], how: str) -> None:
    agree(CONTACTS, spell(contact, how))


participants = st.one_of(
    st.none(), st.just(5), st.just([{"id": 1}]),
    st.fixed_dictionaries({"id": ids}, optional={
        "type": st.sampled_from(["User", "Calendar", "Person", "Company", "Contact", "person", "", 7]),
        "name": st.text(max_size=5), "etag": st.just('"p"'), "email": st.text(max_size=4)}))


@settings(max_examples=300, deadline=None)
@given(entry=st.fixed_dictionaries({"id": ids}, optional={
           "etag": st.just('"e"'), "attendees": st.one_of(st.none(), st.lists(participants, max_size=5), st.just({}))}),
       values=st.lists(st.fixed_dictionaries({"id": ids}, optional={
           "field_type": st.sampled_from(["contact", "text_line"]),
           "contact": st.one_of(st.none(), vendors, st.just(3)),
           "value": st.one_of(st.none(), st.integers(1, 40), st.text(max_size=3))}), max_size=4),
       how=st.sampled_from(SPELLINGS))
def test_both_paths_judge_list_places_alike(entry: dict[str, Any], values: list[Any], how: str) -> None:
    """`attendees[]` (participants: User and Calendar are not contacts) and
    `custom_field_values[].contact`: each object of the list judged, its index in the path."""
    agree(ATTENDEES, spell(entry, how))
    agree(CUSTOM_VALUES, spell({"id": entry["id"], "etag": '"m"', "custom_field_values": values}, how))


@pytest.mark.parametrize("raw", [
    b'{"id":1,"type":"TimeEntry","user":{"id":9},"matter":{"id":1},"quantity":1.0,"id":1}',  # repeated key
    b'{"id":1,"type":"TimeEntry","user":{"id":9},"matter":null,"quantity":1e400}',            # past a double
    b'{"id":1,"type":"Time\\u0045ntry","user":{"id":9},"matter":null}',                       # escaped judgement input
    b'{"id":1,"type":"TimeEntry","user":{"id":9},"matter":null,"note":"\xff"}',               # not UTF-8
    b'{"id":1,"type":"TimeEntry","user":{"id":9}}',                                           # no matter
    b'{"id":1,"type":"TimeEntry","user":{"id":"9"},"matter":null}',                           # a string id
    b'{"id":1,"type":"TimeEntry","user":{"id":9},"matter":null,"vendor":[{"id":1}]}',         # a list, not an object
    b'{"id":1,"vendor":{"id":99999999999999999999}}',                                          # past int64
    b'{"id":1,"etag":7,"type":"ExpenseEntry"}',                                               # etag not a string
    b'{"id":1} x',
    b'[{"id":1}]',
    b'{"id":1,"calendar_entry":[[{"id":1,"summary":"s"}]]}',                                   # a list of lists
])
def test_odd_records_are_decided_alike(raw: bytes) -> None:
    agree(ACTIVITIES, raw)


# -- which path ran -------------------------------------------------------------------------------

def test_the_scanner_answers_every_record_of_a_real_page() -> None:
    """A demo backend's page of activities, as the proxy asks for it: no record falls back."""
    firm = generate_firm(scale=1)
    records = [r for r in firm.activities.values()][:60]
    page = orjson.dumps({"data": records, "meta": {"records": len(records)}})
    bound = bound_for("/activities", ACTIVITY_FIELDS, visible=frozenset(), responsible=frozenset())
    records_raw = [bytes(raw) for raw in split_index(page)[0]]
    scanner = native.scanner(bound, apply=True, watched=False, seal=SEAL)
    assert scanner is not None
    for raw in records_raw:
        assert scanner.run(raw) is not native.FALLBACK
        agree(bound, raw)
    assert scanner.run_all(records_raw) is not native.FALLBACK


def test_the_scanner_answers_a_real_page_of_list_places() -> None:
    """The demo's calendar entries (attendees of several types) and matters (contact custom fields):
    every record answered by the scanner itself, alike the pure path, some attendees stubbed."""
    firm = generate_firm(scale=1)
    decided = 0
    for bound, records in ((ATTENDEES, firm.calendar_entries), (CUSTOM_VALUES, firm.matters)):
        scanner = native.scanner(bound, apply=True, watched=False, seal=SEAL)
        assert scanner is not None
        for record in list(records.values())[:60]:
            raw = orjson.dumps(record)
            done = scanner.run(raw)
            assert done is not native.FALLBACK, raw
            assert isinstance(done, tuple)
            decided += len(done[1])
            agree(bound, raw)
    assert decided > 10


@pytest.mark.parametrize("chunk", [1, 997, 65536])
def test_a_streamed_index_is_judged_alike_chunk_by_chunk(chunk: int) -> None:
    """IndexStream hands each chunk's records to the scanner in one call: the same bytes and the
    same decisions, paths counted across chunks, as the pure path record by record."""
    firm = generate_firm(scale=1)
    records = list(firm.activities.values())[:80]
    body = orjson.dumps({"data": records, "meta": {"records": len(records)}})
    bound = bound_for("/activities", ACTIVITY_FIELDS, visible=frozenset(), responsible=frozenset())
    scanner = native.scanner(bound, apply=True, watched=False, seal=SEAL)
    assert scanner is not None
    answers = []
    for compiled in (scanner, None):
        noted: list[Decision] = []
        stream = IndexStream(Judging(bound, True, noted.extend, SEAL, native=compiled), max_element=1 << 20)
        pieces = [b",".join(stream.feed(body[i:i + chunk])) for i in range(0, len(body), chunk)]
        pieces.append(b",".join(stream.finish()))
        answers.append((b",".join(p for p in pieces if p), stream.meta,
                        [(*d.step.names, d.path, d.object_id) for d in noted]))
    assert answers[0] == answers[1]
    assert len(answers[0][2]) > 20  # hidden hours and rates were decided


def test_answers_the_scanner_cannot_compile_take_the_pure_path() -> None:
    assert native.scanner(ACTIVITIES, apply=False, watched=False, seal=SEAL) is None  # dry-run
    assert native.scanner(ACTIVITIES, apply=True, watched=True, seal=SEAL) is None   # shadow or sentinel
    # every place a bundled policy names compiles: `a`, `a[]`, `a[].b`
    assert native.scanner(ATTENDEES, apply=True, watched=False, seal=SEAL) is not None
    assert native.scanner(CUSTOM_VALUES, apply=True, watched=False, seal=SEAL) is not None


def test_without_the_extension_the_proxy_says_so_and_require_refuses(tmp_path: Path) -> None:
    blocked = ("import sys; sys.modules['proxy._scan'] = None; from proxy import native; "
               "print(native.available(), native.UNAVAILABLE)")
    shown = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, cwd=REPO, check=True)
    assert shown.stdout.startswith("False ") and "Error" in shown.stdout, shown.stdout
    refuse = ("import sys; sys.modules['proxy._scan'] = None; from proxy.cli import main; "
              "sys.exit(main(['serve', '--upstream', 'http://127.0.0.1:9', '--settings', sys.argv[1], "
              "'--native', 'require', '--listen', '127.0.0.1:59998', '--admin-listen', '127.0.0.1:59999']))")
    settings = write_settings(tmp_path, {})
    done = subprocess.run([sys.executable, "-c", refuse, str(settings)], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--native require: the compiled scanner did not load" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- over real sockets: the same answers from both paths ------------------------------------------

@pytest.fixture
async def proxies(tmp_path: Path, settings_file: Path) -> AsyncIterator[tuple[RunningProxy, RunningProxy]]:
    backend = await start_app(make_app(generate_firm(scale=1)))
    key = "k" * 40  # one etag key: the sealed tags of both proxies agree
    compiled = await start_proxy(backend.make_url("/"), settings_file, native="require", etag_key=key)
    pure = await start_proxy(backend.make_url("/"), settings_file, native="off", etag_key=key)
    yield compiled, pure
    await compiled.close()
    await pure.close()
    await backend.close()


TARGETS = [
    f"/api/v4/activities.json?limit=200&fields={ACTIVITY_FIELDS}",
    "/api/v4/activities.json?limit=50",
    "/api/v4/contacts.json?limit=200&fields=id,name,type,etag",
    "/api/v4/communications.json?limit=100&fields=id,subject,senders,receivers,etag",
    "/api/v4/matters.json?limit=100&fields=id,etag,client{id,name,type},display_number",
    "/api/v4/tasks.json?limit=100&fields=id,etag,name,assignee{id,name,type}",
    "/api/v4/calendar_entries.json?limit=100&fields=id,etag,summary,attendees",
    "/api/v4/clio_payments/links.json?limit=100&fields=id,etag,contact,destination_contact",
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("user", [2, 1])
async def test_both_paths_send_the_same_bytes(proxies: tuple[RunningProxy, RunningProxy], http: aiohttp.ClientSession,
                                              target: str, user: int) -> None:
    headers = {"Authorization": f"Bearer token-{user}", "Accept-Encoding": "identity"}
    answers = []
    for proxy in proxies:
        async with http.get(str(proxy.url) + target, headers=headers) as response:
            # the paging links name each proxy's own origin
            answers.append((response.status, (await response.read()).replace(str(proxy.url).rstrip("/").encode(), b"")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200, answers[0][1][:300]


@pytest.mark.parametrize(("given", "said"), [("auto", "native"), ("off", "python (--native off)")])
async def test_the_start_line_names_the_path(tmp_path: Path, settings_file: Path, given: str, said: str) -> None:
    """The real `serve`'s "listening" line says which path decides policed index records."""
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy("http://127.0.0.1:9", settings_file, "--native", given, log=log)
    try:
        for _ in range(100):  # /healthz answers just before the line is written
            lines = [orjson.loads(raw) for raw in log.read_bytes().splitlines() if raw.startswith(b"{")]
            listening = [line for line in lines if line.get("event") == "listening"]
            if listening:
                break
            await asyncio.sleep(0.05)
        assert listening and listening[0]["scanner"] == said, lines
    finally:
        proxy.stop()
