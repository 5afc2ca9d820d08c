"""The `fields` mini-language: strict parsing, augmentation, stripping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import BadRequestError
from proxy.policy.fields import Field, Need, augment, parse_fields, render_fields, strip_added


def test_parse_and_render_round_trip() -> None:
    text = "id,name,client{id,name},custom_field_values{field_type,contact}"
    assert render_fields(parse_fields(text)) == text


@pytest.mark.parametrize("text", ["", "id,", ",id", "id,,name", "client{id{name}}", "client{}", "Client",
                                  "id name", "client{id", "client}", "id,id", "client{id,id}", "a{b}{c}"])
def test_malformed_fields_are_refused(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_fields(text)


def test_augment_adds_inside_braces_and_records_it() -> None:
    selection, added = augment(parse_fields("id,vendor{name}"), [Need("vendor", "id"), Need("type", always=True)])
    assert render_fields(selection) == "id,vendor{name,id},type"
    record = {"id": 1, "type": "TimeEntry", "vendor": {"name": "x", "id": 5}}
    strip_added(record, added)
    assert record == {"id": 1, "vendor": {"name": "x"}}


def test_a_braceless_participant_asks_for_its_type_by_name() -> None:
    """Backends differ on whether brace-less nested objects carry `type`: it is asked for, inside braces
    that list exactly the nested defaults (the representation the client chose), so nothing is stripped."""
    selection, added = augment(parse_fields("attendees"), [Need("attendees", "id"), Need("attendees", "type")])
    assert not added and render_fields(selection) == "attendees{id,etag,type}"


def test_a_braceless_reference_needs_nothing_for_its_id() -> None:
    selection, added = augment(parse_fields("vendor"), [Need("vendor", "id")])
    assert not added and render_fields(selection) == "vendor"


def test_needs_of_an_unselected_location_add_nothing() -> None:
    selection, added = augment(parse_fields("id"), [Need("vendor", "id")])
    assert not added and selection == (Field("id"),)


names = st.sampled_from(["id", "name", "type", "user", "matter", "vendor", "quantity", "price", "note"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, st.none() | st.lists(names, min_size=1, max_size=3, unique=True)),
                min_size=1, max_size=6, unique_by=lambda t: t[0]),
       st.lists(st.tuples(names, st.none() | names, st.booleans()), max_size=6))
def test_client_gets_exactly_the_fields_it_asked_for(client: list[tuple[str, list[str] | None]],
                                                     needs: list[tuple[str, str | None, bool]]) -> None:
    """Augment, let a backend answer the augmented selection, strip: the client's selection remains."""
    selection = tuple(Field(n, tuple(s) if s else None) for n, s in client)
    upstream, added = augment(selection, [Need(n, s, a) for n, s, a in needs])

    def answer(sel: tuple[Field, ...]) -> dict[str, object]:
        defaults = {"id": 1, "etag": "e", "type": "T"}  # one value per field, braces or not
        return {f.name: (defaults if f.sub is None else {s: defaults.get(s, 1) for s in f.sub})
                for f in sel}

    record = answer(upstream)
    strip_added(record, added)
    expected = answer(selection)
    assert record == expected
