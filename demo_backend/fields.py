"""The `fields` query parameter: parsing (one brace level) and projecting a record onto it.

Without `fields` only `id` and `etag` come back. A nested object named without braces, or found two
levels deep, is rendered with its default fields: `id`, and `etag` and `type` where it has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Record

# name -> sub-field names (None: no braces given)
FieldSpec = Mapping[str, frozenset[str] | None]

DEFAULT_SPEC: FieldSpec = {"id": None, "etag": None}
NESTED_DEFAULTS = ("id", "etag", "type")


class FieldsError(ValueError):
    """A `fields` value the API rejects with 400 ArgumentError."""


def parse_fields(raw: str | None) -> FieldSpec:
    """`id,name,client{id,name}` -> {"id": None, "name": None, "client": {"id", "name"}}."""
    if raw is None or not raw.strip():
        return DEFAULT_SPEC
    spec: dict[str, frozenset[str] | None] = {}
    for item in _split_top_level(raw):
        item = item.strip()
        if not item:
            continue
        if "{" not in item:
            if "}" in item:
                raise FieldsError("unbalanced '}' in fields")
            spec.setdefault(item, None)
            continue
        name, _, rest = item.partition("{")
        name = name.strip()
        if not name or not rest.endswith("}") or "}" in rest[:-1]:
            raise FieldsError(f"malformed field {item!r}")
        wanted = frozenset(s.strip() for s in rest[:-1].split(",") if s.strip())
        previous = spec.get(name)
        merged = wanted | previous if previous else wanted
        spec[name] = merged or None
    return spec or DEFAULT_SPEC


def _split_top_level(raw: str) -> list[str]:
    """Split on commas outside braces; a brace inside braces is the documented 400."""
    items: list[str] = []
    depth, start = 0, 0
    for index, ch in enumerate(raw):
        if ch == "{":
            depth += 1
            if depth > 1:
                raise FieldsError("nested fields may not list their own fields (one level of braces only)")
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise FieldsError("unbalanced '}' in fields")
        elif ch == "," and depth == 0:
            items.append(raw[start:index])
            start = index + 1
    if depth:
        raise FieldsError("unbalanced '{' in fields")
    items.append(raw[start:])
    return items


def _default_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in NESTED_DEFAULTS}
    if isinstance(value, list):
        return [_default_nested(item) for item in value]
    return value


def _with_subfields(value: Any, subfields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _default_nested(v) for k, v in value.items() if k in subfields}
    if isinstance(value, list):
        return [_with_subfields(item, subfields) for item in value]
    return value


def project(record: Record, spec: FieldSpec) -> Record:
    """The record's fields named in `spec`, in the record's own key order; unknown names are omitted."""
    out: Record = {}
    for key, value in record.items():
        if key not in spec:
            continue
        subfields = spec[key]
        out[key] = _default_nested(value) if subfields is None else _with_subfields(value, subfields)
    return out
