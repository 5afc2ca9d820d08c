"""The `fields` mini-language: one brace level, defaults, order and projection."""

from __future__ import annotations

import pytest

from demo_backend.fields import DEFAULT_SPEC, FieldsError, parse_fields, project

RECORD = {
    "id": 1, "etag": '"e"', "name": "X", "client": {"id": 5, "name": "C", "type": "Person"},
    "custom_field_values": [{"id": "contact-1", "field_type": "contact",
                             "contact": {"id": 9, "name": "Adj", "type": "Company"}}],
    "matter": {"id": 3, "display_number": "00003-X"},
}


def test_parse_one_brace_level() -> None:
    spec = parse_fields("id,name,client{id,name},custom_field_values{id,field_type,contact}")
    assert spec == {"id": None, "name": None, "client": {"id", "name"},
                    "custom_field_values": {"id", "field_type", "contact"}}


@pytest.mark.parametrize("raw", ["client{id,company{id}}", "client{id", "client}", "{id}", "a{b}c"])
def test_malformed_fields_are_rejected(raw: str) -> None:
    with pytest.raises(FieldsError):
        parse_fields(raw)


def test_without_fields_only_id_and_etag() -> None:
    assert parse_fields(None) is DEFAULT_SPEC
    assert project(RECORD, parse_fields(None)) == {"id": 1, "etag": '"e"'}


def test_projection_keeps_record_order_and_omits_unknown_names() -> None:
    out = project(RECORD, parse_fields("name,nonsense,id"))
    assert list(out) == ["id", "name"]


def test_nested_without_braces_gets_default_nested_fields() -> None:
    out = project(RECORD, parse_fields("client,matter,custom_field_values{field_type,contact}"))
    assert out["client"] == {"id": 5, "type": "Person"}
    assert out["matter"] == {"id": 3}
    assert out["custom_field_values"] == [{"field_type": "contact", "contact": {"id": 9, "type": "Company"}}]


def test_nested_with_braces() -> None:
    assert project(RECORD, parse_fields("client{name}"))["client"] == {"name": "C"}
