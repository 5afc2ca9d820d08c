"""Properties of the pure core (plan, decide, apply, strip) hammered by hypothesis."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.decide import Bound, make_plan
from proxy.facts.settings import Settings
from proxy.facts.viewer import Viewer
from proxy.policy.fields import parse_fields
from proxy.policy.load import load_policies
from proxy.transform import transform_record
from tests.conftest import ALL, RESTRICTED
from tests.support.harness import POLICIES

POLICY_SET = load_policies(POLICIES)
ROUTES = {r.template: r for r in POLICY_SET.routes}
SETTINGS = Settings(ALL, {}, {2: RESTRICTED}, "test")
CONTACT_IDS = list(range(100, 140))


def viewer(visible: frozenset[int], responsible: frozenset[int] = frozenset()) -> Viewer:
    return Viewer(2, ("Attorney",), SETTINGS.for_caller(2, ("Attorney",)), visible, responsible)


@st.composite
def participant(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Person", "Company", "User"]))
    ident = draw(st.sampled_from(CONTACT_IDS))
    return {"id": ident, "type": kind, "name": f"SENTINEL-{kind}-{ident}",
            "identifier": f"sentinel-{ident}@example.com"}


@st.composite
def communication(draw: st.DrawFn) -> dict[str, Any]:
    return {"id": draw(st.integers(1, 10**6)), "subject": "s",
            "senders": draw(st.lists(participant(), max_size=4)),
            "receivers": draw(st.lists(participant(), max_size=4))}


FIELDS = "id,subject,senders{id,type,name,identifier},receivers{id,type,name,identifier}"


def communication_plan(visible: set[int]) -> Bound:
    """The plan of GET /communications/{id} with FIELDS, bound to a restricted viewer."""
    who = viewer(frozenset(visible))
    return make_plan(ROUTES["/communications/{id}"], who.settings, parse_fields(FIELDS)).bind(who)


@settings(max_examples=300, deadline=None)
@given(communication(), st.sets(st.sampled_from(CONTACT_IDS)))
def test_hidden_contacts_never_reach_the_output(record: dict[str, Any], visible: set[int]) -> None:
    original = copy.deepcopy(record)
    out, _ = transform_record(record, "data", communication_plan(visible), enforce=True)
    assert out is not None
    text = orjson.dumps(out).decode()
    for key in ("senders", "receivers"):
        for before, after in zip(original[key], out[key], strict=True):
            if before["type"] == "User" or before["id"] in visible:
                assert after == before  # users and visible contacts come out untouched
            else:
                assert after == {"id": before["id"], "name": "****", "type": before["type"], "redacted": True}
    hidden_sentinels = {p["name"] for k in ("senders", "receivers") for p in original[k]
                        if p["type"] != "User" and p["id"] not in visible}
    visible_sentinels = {p["name"] for k in ("senders", "receivers") for p in original[k]
                         if p["type"] == "User" or p["id"] in visible}
    for name in hidden_sentinels - visible_sentinels:
        assert name not in text


@settings(max_examples=200, deadline=None)
@given(communication(), st.sets(st.sampled_from(CONTACT_IDS)), st.randoms())
def test_outputs_do_not_depend_on_hidden_data(record: dict[str, Any], visible: set[int], rnd: Any) -> None:
    """Two backends differing only in hidden contacts' data give identical answers."""
    twin = copy.deepcopy(record)
    for key in ("senders", "receivers"):
        for p in twin[key]:
            if p["type"] != "User" and p["id"] not in visible:
                p["name"] = "X" * rnd.randint(1, 40)
                p["identifier"] = "other@example.com"
                p["secondary_email"] = "drift@example.com"  # schema drift: the allowlist wins
    bound = communication_plan(visible)
    a, _ = transform_record(record, "data", bound, enforce=True)
    b, _ = transform_record(twin, "data", bound, enforce=True)
    assert orjson.dumps(a) == orjson.dumps(b)


@settings(max_examples=200, deadline=None)
@given(communication(), st.sets(st.sampled_from(CONTACT_IDS)))
def test_dry_run_changes_nothing(record: dict[str, Any], visible: set[int]) -> None:
    original = copy.deepcopy(record)
    out, decisions = transform_record(record, "data", communication_plan(visible), enforce=False)
    assert out == original
    hidden = sum(1 for k in ("senders", "receivers") for p in original[k]
                 if p["type"] != "User" and p["id"] not in visible)
    assert len(decisions) == hidden


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "id": st.integers(1, 10**6),
    "type": st.sampled_from(["TimeEntry", "ExpenseEntry"]),
    "quantity": st.floats(0, 10**5), "price": st.floats(0, 900), "total": st.floats(0, 10**6),
    "user": st.fixed_dictionaries({"id": st.sampled_from([2, 3, 4])}),
    "matter": st.none() | st.fixed_dictionaries({"id": st.sampled_from([500, 501])}),
}), max_size=5))
def test_hours_and_rates_of_others_never_reach_the_output(activities: list[dict[str, Any]]) -> None:
    route = ROUTES["/activities"]
    who = viewer(frozenset(), responsible=frozenset({500}))
    plan = make_plan(route, who.settings, parse_fields("id,quantity,price,total"))
    for activity in activities:
        original = copy.deepcopy(activity)
        out, _ = transform_record(activity, "data[0]", plan.bind(who), enforce=True)
        assert out is not None
        assert set(out) <= {"id", "quantity", "price", "total", "quantity_redacted", "redacted"}
        own = original["user"]["id"] == 2
        responsible = original["matter"] is not None and original["matter"]["id"] == 500
        if original["type"] == "TimeEntry" and not own and not responsible:
            assert out["quantity"] is None and out["quantity_redacted"] is True
        else:
            assert out["quantity"] == original["quantity"]
        if own:
            assert out["price"] == original["price"] and out["total"] == original["total"]
        else:
            assert "price" not in out and "total" not in out and out["redacted"] is True


def test_apply_of_no_decisions_is_identity() -> None:
    from proxy.decide import apply

    record = {"id": 1, "vendor": {"id": 5, "name": "n"}}
    assert apply(record, []) is record


def test_schema_drift_on_a_hidden_time_entry_loses_the_unknown_field() -> None:
    route = ROUTES["/activities"]
    who = viewer(frozenset(), responsible=frozenset())
    plan = make_plan(route, who.settings, parse_fields("id,quantity,quantity_v2,note"))
    record = {"id": 1, "quantity": 3600.0, "quantity_v2": 3600.0, "note": "n", "type": "TimeEntry",
              "user": {"id": 9}, "matter": {"id": 7}}
    out, _ = transform_record(record, "data[0]", plan.bind(who), enforce=True)
    assert out == {"id": 1, "quantity": None, "note": "n", "quantity_redacted": True}


# --- plans are cached per (route, settings, fields text, index); settings per (user, roles) ------


def test_a_plan_is_made_once_per_route_settings_and_fields() -> None:
    from proxy.decide import PlanCache
    from proxy.errors import BadRequestError

    cache = PlanCache(maxsize=8)
    route = ROUTES["/activities"]
    restricted = SETTINGS.for_caller(2, ())
    everyone = SETTINGS.for_caller(1, ())
    first = cache.get(route, restricted, "id,quantity,user{id}", index=True)
    assert cache.get(route, restricted, "id,quantity,user{id}", index=True) is first
    assert first == make_plan(route, restricted, parse_fields("id,quantity,user{id}"), index=True)
    assert first.touches and not cache.get(route, everyone, "id,quantity,user{id}", index=True).touches
    assert cache.get(route, restricted, "id,note", index=True) is not first
    for _ in range(2):  # a malformed fields text is refused every time, never cached
        try:
            cache.get(route, restricted, "id,,x", index=True)
        except BadRequestError:
            pass
        else:
            raise AssertionError("a malformed fields text made a plan")


def test_settings_are_resolved_once_per_caller_and_roles() -> None:
    settings = Settings(ALL, {"Intern": RESTRICTED}, {}, "test")
    intern = settings.for_caller(7, ("Intern",))
    assert settings.for_caller(7, ("Intern",)) is intern
    assert settings.for_caller(7, ()) != intern  # other roles, other settings
    assert Settings(ALL, {}, {}, "reloaded").for_caller(7, ("Intern",)) != intern  # a reload starts afresh


# --- issue 9: what a restricted caller gets is what it asked for; a repeated key never passes -----

SENTINEL = "SENTINEL-extra"
EXTRA = st.dictionaries(st.sampled_from(["vendor", "client", "facets", "name", "secret", "matter", "user"]),
                        st.just({"id": 950, "name": SENTINEL, "nested": {"name": SENTINEL}}), max_size=4)
SELECTABLE = ["id", "note", "quantity", "price", "vendor", "matter", "matter{id}", "user{id}", "vendor{id,type}"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SELECTABLE), min_size=1, max_size=5, unique_by=lambda f: f.split("{")[0]),
       EXTRA, st.sampled_from(["TimeEntry", "ExpenseEntry"]))
def test_a_restricted_caller_gets_only_what_it_selected(fields: list[str], extra: dict[str, Any], kind: str) -> None:
    """Whatever members the backend adds (ignoring `fields`), a restricted caller's record holds the
    selected members (and what rules add), and nothing a sentinel marks leaks out of unselected ones."""
    who = viewer(frozenset({900}), responsible=frozenset({500}))
    plan = make_plan(ROUTES["/activities"], who.settings, parse_fields(",".join(fields)))
    record = {"id": 1, "note": "n", "quantity": 3.0, "price": 2.0, "type": kind, "user": {"id": 3, "name": SENTINEL},
              "matter": {"id": 501, "client": {"id": 950, "name": SENTINEL}}, **extra}
    out, _ = transform_record(record, "data[0]", plan.bind(who), enforce=True)
    assert out is not None
    selected = {f.split("{")[0] for f in fields}
    assert set(out) <= selected | {"quantity_redacted", "redacted"}
    assert SENTINEL not in orjson.dumps(out).decode()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), JSON, min_size=1, max_size=4), st.data())
def test_a_repeated_key_is_found_in_any_spelling(value: dict[str, Any], data: st.DataObject) -> None:
    import json

    import pytest

    from proxy.errors import UndecidableError
    from proxy.jsonkeys import refuse_repeated_keys

    for raw in (orjson.dumps(value), json.dumps(value, indent=1).encode(), json.dumps(value).encode()):
        refuse_repeated_keys(raw, orjson.loads(raw), "x")  # well-formed, any spelling: passes
    key = data.draw(st.sampled_from(sorted(value)))
    spelled = json.dumps(key, ensure_ascii=data.draw(st.booleans())).encode()
    if data.draw(st.booleans()) and key:
        spelled = b'"' + b"".join(b"\\u%04x" % ord(c) if ord(c) < 0x10000 else c.encode() for c in key) + b'"'
    repeated = orjson.dumps(value)[:-1] + b"," + spelled + b' : "SENTINEL"}'
    with pytest.raises(UndecidableError):
        refuse_repeated_keys(repeated, orjson.loads(repeated), "x")
