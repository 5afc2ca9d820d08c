"""Conditional requests through the proxy (SPEC 6): its ETags are not the backend's, yet If-Match with
them works: the record unchanged, the write goes through; changed, 412 and nothing is forwarded.

Real sockets: a real client -> the proxy -> the demo legacy backend (which implements etags and 412).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from demo_backend.shapes import refresh_etag
from proxy.config import ConfigValueError, build_config
from proxy.etag import IfMatch, Sealer, forwarded_if_match, parse_if_match
from proxy.facts.service import auth_digest
from tests.support.harness import start_proxy
from tests.test_rules_demo import ADA, RITA, Stack, make_stack

KEY = "k" * 32


@pytest.fixture
async def stack(tmp_path: Path, settings_file: Path) -> AsyncIterator[Stack]:
    async for s in make_stack(tmp_path, settings_file, "enforce"):
        yield s


def hidden_hours_activity(stack: Stack) -> int:
    """A time entry user 2 can reach (its matter) but whose hours 4.0.8 hides from them."""
    responsible = {m for m, rec in stack.firm.matters.items()
                   if (rec.get("responsible_attorney") or {}).get("id") == 2}
    return next(a for a, rec in stack.firm.activities.items()
                if rec["type"] == "TimeEntry" and rec["user"]["id"] != 2 and rec.get("matter")
                and stack.firm.can_access(2, rec["matter"]["id"]) and rec["matter"]["id"] not in responsible)


def own_activity(stack: Stack) -> int:
    """An activity of user 2's own: no rule changes it for them."""
    return next(a for a, rec in stack.firm.activities.items() if rec["user"]["id"] == 2)


def patches(stack: Stack) -> list[Any]:
    return [r for r in stack.received if r.method == "PATCH"]


def if_match_sent(recorded: Any) -> str | None:
    """The If-Match the backend received with a request."""
    return next((v for k, v in recorded.headers if k.lower() == "if-match"), None)


async def get(stack: Stack, path: str, headers: dict[str, str] = RITA) -> tuple[int, str, Any]:
    async with stack.http.get(f"{stack.proxy.url}{path}", headers=headers) as r:
        return r.status, r.headers.get("ETag", ""), await r.json() if r.status == 200 else None


async def patch(stack: Stack, path: str, if_match: str | None, note: str,
                headers: dict[str, str] = RITA) -> tuple[int, str, Any]:
    extra = {"If-Match": if_match} if if_match is not None else {}
    async with stack.http.patch(f"{stack.proxy.url}{path}", headers={**headers, **extra},
                                json={"data": {"note": note}}) as r:
        return r.status, r.headers.get("ETag", ""), await r.json()


# ------------------------------------------------------------------------------------ the pure core


def test_tags_are_sealed_per_caller_and_policy_version_and_verify_only_their_etag() -> None:
    one = Sealer.of(b"k" * 32, auth_digest("Bearer a"), "v1")
    backend = '"0123456789abcdef0123456789abcdef"'
    tag = one.record_tag(backend)
    assert tag.startswith('"rp.') and "0123456789abcdef" not in tag
    assert one.record_tag('W/' + backend) == tag  # weak and strong spellings of one backend tag
    header = one.header_tag(backend, b"{}")
    assert header.startswith('W/"rp.') and header != one.header_tag(backend, b"[]")
    assert header.split(".")[1] == tag.strip('"').split(".")[1]  # the same MAC in header and member
    others = (Sealer.of(b"k" * 32, auth_digest("Bearer b"), "v1"), Sealer.of(b"k" * 32, auth_digest("Bearer a"), "v2"),
              Sealer.of(b"j" * 32, auth_digest("Bearer a"), "v1"))
    assert all(o.record_tag(backend) != tag for o in others)
    for sent in (tag, header):
        parsed = parse_if_match(sent)
        assert forwarded_if_match(parsed, one, backend) == backend
        assert forwarded_if_match(parsed, one, '"ffff"') is None  # the record changed
        assert forwarded_if_match(parsed, one, None) is None
        assert all(forwarded_if_match(parsed, o, backend) is None for o in others)
    # Without a backend etag: the body digest, still per caller.
    assert one.header_tag(None, b"{}") != others[0].header_tag(None, b"{}")


def test_if_match_parsing() -> None:
    assert parse_if_match("*") == IfMatch(True, ())
    assert parse_if_match(' "a" , W/"rp.x",') == IfMatch(False, (('"a"', "a"), ('W/"rp.x"', "rp.x")))
    for bad in ("", "a", '"a', '"a" "b"', '*, "a"', 'w/"a"', '"a"b', ',', '"a"\x7f'):
        with pytest.raises(ValueError):
            parse_if_match(bad)
    mixed = parse_if_match('"rp.' + "0" * 32 + '", "theirs"')
    assert mixed.proxy_tags == ("rp." + "0" * 32,) and mixed.foreign == ('"theirs"',)
    sealer = Sealer.of(b"k" * 32, "c", "v")
    assert forwarded_if_match(mixed, sealer, '"now"') == '"theirs"'  # not ours: the backend compares


def test_etag_key_is_checked_and_never_shown() -> None:
    import argparse

    base = {"upstream": "http://b:1", "settings": "s.yaml"}
    with pytest.raises(ConfigValueError) as err:
        build_config(argparse.Namespace(**base, etag_key="short-secret"), environ={})
    assert any("--etag-key" in p for p in err.value.problems) and "short-secret" not in str(err.value)
    config = build_config(argparse.Namespace(**base), environ={"REDACTION_PROXY_ETAG_KEY": KEY})
    assert config.etag_key == KEY.encode() and KEY not in repr(config)


# ------------------------------------------------------------------------------- through the proxy


async def test_if_match_on_a_redacted_record_writes_when_unchanged_and_412s_when_changed(stack: Stack) -> None:
    aid = hidden_hours_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    backend_etag = stack.firm.activities[aid]["etag"]
    status, header, body = await get(stack, path + "?fields=id,etag,quantity,note")
    assert status == 200 and body["data"]["quantity"] is None and body["data"]["quantity_redacted"] is True
    # Neither the header nor the member is the backend's etag (a digest of the hidden hours).
    assert backend_etag.strip('"') not in header and header.startswith('W/"rp.')
    assert body["data"]["etag"] != backend_etag and body["data"]["etag"].startswith('"rp.')

    status, header2, written = await patch(stack, path + "?fields=id,etag,note", header, "first")
    assert status == 200, written
    assert stack.firm.activities[aid]["note"] == "first"
    assert if_match_sent(patches(stack)[-1]) == backend_etag  # translated: the backend checked it
    assert written["data"]["etag"] != stack.firm.activities[aid]["etag"]  # the answer is redacted too

    # The record changed: the old tag (header or member) fails, and nothing reaches the backend.
    for stale in (header, body["data"]["etag"]):
        status, _, error = await patch(stack, path, stale, "lost update")
        assert status == 412 and error["error"]["type"] == "PreconditionFailed"
    assert len(patches(stack)) == 1 and stack.firm.activities[aid]["note"] == "first"

    # The tag of the write's own answer is current; a change made behind the proxy makes it stale.
    assert (await patch(stack, path, header2, "second"))[0] == 200
    _, header3, _ = await get(stack, path + "?fields=id,note")
    record = stack.firm.activities[aid]
    record["note"] = "changed at the backend"
    refresh_etag(record)
    assert (await patch(stack, path, header3, "third"))[0] == 412
    assert len(patches(stack)) == 2 and record["note"] == "changed at the backend"


async def test_the_member_tag_of_a_redacted_record_works_for_if_match(stack: Stack) -> None:
    aid = hidden_hours_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    _, _, body = await get(stack, path + "?fields=id,etag,quantity")
    assert (await patch(stack, path, body["data"]["etag"], "via the member"))[0] == 200
    assert stack.firm.activities[aid]["note"] == "via the member"


DECIDED = "fields=id,etag,quantity,price,vendor,subject"
"""Every activities rule decides on these fields: a record none of them changes keeps the backend's etag."""


async def test_a_record_no_rule_changes_keeps_its_etag_member_and_gets_our_header(stack: Stack) -> None:
    aid = own_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    backend_etag = stack.firm.activities[aid]["etag"]
    _, header, body = await get(stack, f"{path}?{DECIDED}")
    assert body["data"]["etag"] == backend_etag and header != backend_etag and header.startswith('W/"rp.')
    # A rule left undecided by `fields` (no price asked: 4.0.5) may have hidden values in the etag:
    # without deciding, the proxy's tag is sent.
    _, _, body = await get(stack, f"{path}?fields=id,etag,quantity")
    assert body["data"]["etag"] != backend_etag and body["data"]["etag"].startswith('"rp.')
    # Our header tag is translated; the backend's own tag is forwarded as it came, and compared there.
    assert (await patch(stack, path, header, "ours"))[0] == 200
    assert if_match_sent(patches(stack)[-1]) == backend_etag
    status, _, error = await patch(stack, path, backend_etag, "theirs, now stale")
    assert status == 412 and error["error"]["type"] == "PreconditionFailed"
    assert if_match_sent(patches(stack)[-1]) == backend_etag
    assert (await patch(stack, path, "*", "any"))[0] == 200
    assert if_match_sent(patches(stack)[-1]) == "*"
    assert stack.firm.activities[aid]["note"] == "any"


async def test_if_none_match_with_our_tag_is_304_per_representation(stack: Stack) -> None:
    aid = hidden_hours_activity(stack)
    path = f"{stack.proxy.url}/api/v4/activities/{aid}.json?fields=id,quantity"
    _, header, _ = await get(stack, f"/api/v4/activities/{aid}.json?fields=id,quantity")
    async with stack.http.get(path, headers={**RITA, "If-None-Match": header}) as r:
        assert r.status == 304 and r.headers["ETag"] == header
    async with stack.http.get(path + ",note", headers={**RITA, "If-None-Match": header}) as r:
        assert r.status == 200  # another `fields`, another representation


async def test_a_tag_given_to_another_caller_does_not_verify(stack: Stack) -> None:
    aid = own_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    _, adas, _ = await get(stack, path, headers=ADA)
    _, ritas, _ = await get(stack, path)
    assert adas != ritas
    status, _, error = await patch(stack, path, adas, "borrowed tag")
    assert status == 412 and error["error"]["type"] == "PreconditionFailed"
    assert not patches(stack)


async def test_malformed_if_match_is_400_and_our_tags_are_never_sent_raw(stack: Stack) -> None:
    aid = own_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    for bad in ('rp.abc', '"a" "b"', '*, "a"'):
        status, _, error = await patch(stack, path, bad, "x")
        assert status == 400 and error["error"]["type"] == "BadRequest"
    # A tag that claims to be ours but is not well formed never verifies, and is not forwarded.
    assert (await patch(stack, path, '"rp.nonsense"', "x"))[0] == 412
    assert not patches(stack)
    # On an index our tags name nothing: refused, never forwarded.
    async with stack.http.get(f"{stack.proxy.url}/api/v4/activities.json",
                              headers={**RITA, "If-Match": '"rp.' + "0" * 32 + '"'}) as r:
        assert r.status == 412
    assert not [r for r in stack.received if if_match_sent(r) is not None]


async def test_redacted_records_in_an_index_carry_our_tag(stack: Stack) -> None:
    """Hours (4.0.8), rate (4.0.5: other users' entries) or vendor (4.0.9) redacted: our tag; untouched:
    the backend's."""
    aid = hidden_hours_activity(stack)
    records, _ = await stack.walk(f"/api/v4/activities.json?{DECIDED}&limit=200")
    sealed = kept = 0
    for got in records:
        backend_etag = stack.firm.activities[got["id"]]["etag"]
        if got.get("quantity_redacted") or got.get("redacted") or any(
                (got.get(key) or {}).get("redacted") for key in ("vendor", "subject")):
            assert got["etag"] != backend_etag and got["etag"].startswith('"rp.')
            sealed += 1
        else:
            assert got["etag"] == backend_etag
            kept += 1
    assert sealed > 0 and kept > 0
    listed = next(r for r in records if r["id"] == aid)
    path = f"/api/v4/activities/{aid}.json"
    assert (await patch(stack, path, listed["etag"], "from the index"))[0] == 200


async def test_etags_asked_for_without_what_the_rules_decide_on_are_all_ours(stack: Stack) -> None:
    """`fields=id,etag` (the API's default) decides nothing, yet a hidden entry's backend etag digests its
    hours and rate: every record a rule could touch carries the proxy's tag, and it works for If-Match."""
    for path in ("/api/v4/activities.json?limit=200", "/api/v4/activities.json?fields=id,etag,note&limit=200"):
        records, _ = await stack.walk(path)
        assert records
        for got in records:
            assert got["etag"] != stack.firm.activities[got["id"]]["etag"] and got["etag"].startswith('"rp.')
            assert set(got) <= {"id", "etag", "note"}  # nothing was decided: no markers
    aid = hidden_hours_activity(stack)
    listed = next(r for r in records if r["id"] == aid)
    assert (await patch(stack, f"/api/v4/activities/{aid}.json", listed["etag"], "default fields"))[0] == 200
    for task in (await stack.walk("/api/v4/tasks.json?limit=200"))[0]:
        assert task["etag"] != stack.firm.tasks[task["id"]]["etag"]  # a task's etag covers its assignee


async def test_a_task_with_a_hidden_assignee_does_not_carry_the_backend_etag(stack: Stack) -> None:
    records, _ = await stack.walk("/api/v4/tasks.json?fields=id,etag,assignee{id,name,type}&limit=200")
    stubbed = [r for r in records if (r.get("assignee") or {}).get("redacted")]
    assert stubbed
    for got in stubbed:
        assert got["etag"] != stack.firm.tasks[got["id"]]["etag"] and "etag" not in got["assignee"]


async def test_replicas_sharing_the_etag_key_verify_each_others_tags(stack: Stack, settings_file: Path) -> None:
    upstream = stack.backend.make_url("/")
    one = await start_proxy(upstream, settings_file, etag_key=KEY)
    two = await start_proxy(upstream, settings_file, etag_key=KEY)
    try:
        aid = own_activity(stack)
        path = f"/api/v4/activities/{aid}.json"
        async with stack.http.get(f"{one.url}{path}", headers=RITA) as r:
            tag = r.headers["ETag"]
        async with stack.http.patch(f"{two.url}{path}", headers={**RITA, "If-Match": tag},
                                    json={"data": {"note": "via two"}}) as r:
            assert r.status == 200
        # The stack's own proxy has a random key of its own: the same (now stale anyway) tag fails.
        async with stack.http.get(f"{one.url}{path}", headers=RITA) as r:
            fresh = r.headers["ETag"]
        status, _, _ = await patch(stack, path, fresh, "via a replica with another key")
        assert status == 412 and len(patches(stack)) == 1
    finally:
        await one.close()
        await two.close()


async def test_a_get_of_a_show_with_if_match_of_ours_is_checked(stack: Stack) -> None:
    aid = own_activity(stack)
    path = f"/api/v4/activities/{aid}.json"
    _, tag, _ = await get(stack, path)
    async with stack.http.get(f"{stack.proxy.url}{path}", headers={**RITA, "If-Match": tag}) as r:
        assert r.status == 200
    mac = tag.split(".")[1]
    stale = tag.replace(mac, ("0" if mac[0] != "0" else "1") + mac[1:])
    async with stack.http.get(f"{stack.proxy.url}{path}", headers={**RITA, "If-Match": stale}) as r:
        assert r.status == 412
    assert not [r for r in stack.received if "rp." in (if_match_sent(r) or "")]



async def test_nested_redacted_time_entries_carry_our_tag(stack: Stack) -> None:
    """A hidden entry nested in a calendar entry: its own etag is ours; a visible one keeps the backend's."""
    path = "/api/v4/calendar_entries.json?fields=id,time_entries{id,etag,quantity,price}&limit=200"
    entries, _ = await stack.walk(path)
    sealed = kept = 0
    for entry in entries:
        for te in entry.get("time_entries") or []:
            backend_etag = stack.firm.activities[te["id"]]["etag"]
            if te.get("quantity_redacted") or te.get("redacted"):
                assert te["etag"] != backend_etag and te["etag"].startswith('"rp.')
                sealed += 1
            else:
                assert te["etag"] == backend_etag
                kept += 1
    assert sealed > 0 and kept > 0
