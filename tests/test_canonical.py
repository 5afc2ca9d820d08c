"""Canonical request targets: every spelling of a policed path matches its policy, or is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import BadRequestError
from proxy.policy.canonical import canonical_query, canonicalise
from proxy.policy.load import load_policies
from tests.support.harness import POLICIES

POLICY_SET = load_policies(POLICIES)


def matched(raw: str) -> str | None:
    match = POLICY_SET.match(canonicalise(raw).match_segments)
    return match.route.template if match else None


@pytest.mark.parametrize("raw", [
    "/api/v4/contacts/5.json", "/api/v4/contacts/5", "/api/v4//contacts/5", "/api/v4/contacts/5/",
    "/API/V4/Contacts/5.JSON", "/api/v4/%63ontacts/5", "/api/v4/contacts/%35.json", "//api/v4/contacts/5.json",
    "/api/v4/contacts/05",
])
def test_spellings_of_one_contact_match_its_route(raw: str) -> None:
    assert matched(raw) == "/contacts/{id}"


@pytest.mark.parametrize("raw", [
    "/api/v4/x/../contacts/5.json", "/api/v4/./contacts/5.json", "/api/v4/contacts/5.json/..",
    "/api/v4/contacts%2F5.json", "/api/v4/contacts/5%2ejson%2f..", "/api/v4/contacts/5.json;x",
    "/api/v4/contacts;x/5.json", "/api/v4/x/..;/contacts/5.json", "/api/v4/contacts/%00", "/api/v4/%",
    "/api/v4/%1", "/api/v4/contacts/%252e", "/api/v4/contacts/%c0%af", "http://other/api/v4/contacts/5.json",
    "*", "/api/v4/contacts/5\\", "/api/v4/contacts/5#frag", "/api/v4/contacts/5?_method=DELETE",
    "/api/v4/contacts?fields=a&fields=b", "/api/v4/contacts?x=%ff", "/api/v4/contacts?a=1;b=2",
])
def test_ambiguous_spellings_are_refused(raw: str) -> None:
    with pytest.raises(BadRequestError):
        canonicalise(raw)


@pytest.mark.parametrize("raw", [
    "/api/v4/contacts/5.xml", "/api/v4/contacts/5.json.json", "/api/v4/contacts/5.json/x.css",
    "/api/v4/contacts/5.css", "/api/v4/contacts/abc", "/api/v4/contacts/5/secret",
])
def test_unknown_spellings_inside_a_policed_family_match_nothing(raw: str) -> None:
    target = canonicalise(raw)
    assert POLICY_SET.policed(target.match_segments)
    assert POLICY_SET.match(target.match_segments) is None  # the handler answers 404


def test_repeated_parameter_with_the_same_value_is_read_once() -> None:
    assert canonical_query("fields=id&limit=2&fields=id") == (("fields", "id"), ("limit", "2"))
    assert canonical_query("ids[]=1&ids[]=2") == (("ids[]", "1"), ("ids[]", "2"))


_SEGMENT = st.sampled_from(["api", "v4", "contacts", "5", "activities", "7", "matters", "client", ".json",
                            "", ".", "..", "%2e", "%2E%2E", "%2F", "Contacts", "CONTACTS", "5.json", "%35",
                            "%63ontacts", ";x", "x", "%00", "json"])


@settings(max_examples=600, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=7), st.booleans())
def test_no_spelling_escapes_its_policy(parts: list[str], trailing: bool) -> None:
    """Whatever the spelling: refused, or matched on exactly the segments that are forwarded."""
    raw = "/" + "/".join(parts) + ("/" if trailing else "")
    try:
        target = canonicalise(raw)
    except BadRequestError:
        return
    segments = target.match_segments
    # The decoded, lower-cased, suffix-stripped form is what was matched; no other form exists
    # in which a backend could find a policed resource that our matcher did not.
    for s in segments:
        assert s not in (".", "..") and "/" not in s and "%" not in s and ";" not in s
    if POLICY_SET.policed(segments):
        return  # matched, or 404 inside the family: never passed through
    rel = POLICY_SET.relative(segments)
    assert rel is None or rel[0].removesuffix(".json") not in POLICY_SET.families
