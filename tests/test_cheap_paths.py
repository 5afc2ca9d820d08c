"""The per-record work made cheap (issue 14, item 3) does exactly what the plain version did.

Shaping precomputes per plan and skips members in C; the record tags' HMAC starts from the key's
hashed pads. Each is compared here with the straightforward version on random input.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxy.errors import BadRequestError
from proxy.etag import Sealer
from proxy.policy.canonical import CanonicalTarget, canonicalise
from proxy.policy.fields import DEFAULT_NESTED, Field, Shaping, shape_record

NAMES = ["id", "etag", "type", "name", "vendor", "user", "note", "matter", "contact", "attendees"]


def _reference_shape(record: dict[str, Any], shaping: Shaping) -> None:
    """shape_record as it was written first: a Python step per member, nothing precomputed."""
    decided = shaping.decided
    wanted = {f.name: f.sub for f in shaping.selection}
    for name in [k for k in record if k not in wanted]:
        del record[name]
    for name, sub in wanted.items():
        value = record.get(name)
        if not isinstance(value, (dict, list)):
            continue
        if sub is None:
            if (name,) not in decided:
                _reference_keep_only(value, DEFAULT_NESTED)
            else:
                _reference_inner_defaults(value)
            continue
        keep = frozenset(sub)
        for item in _reference_objects(value):
            for key in [k for k in item if k not in keep]:
                del item[key]
            for key, inner in item.items():
                if isinstance(inner, (dict, list)):
                    if (name, key) not in decided:
                        _reference_keep_only(inner, DEFAULT_NESTED)
                    else:
                        _reference_inner_defaults(inner)


def _reference_inner_defaults(value: dict[str, Any] | list[Any]) -> None:
    """A place a rule decides on keeps its own members; objects nested in it keep the defaults."""
    for item in _reference_objects(value):
        for inner in item.values():
            if isinstance(inner, (dict, list)):
                _reference_keep_only(inner, DEFAULT_NESTED)


def _reference_objects(value: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    out: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, (dict, list)):
            out.extend(_reference_objects(item))
    return out


def _reference_keep_only(value: dict[str, Any] | list[Any], keep: frozenset[str]) -> None:
    for item in _reference_objects(value):
        for key in [k for k in item if k not in keep]:
            del item[key]


class _Odd(dict):  # type: ignore[type-arg]
    """A dict subclass: never what a JSON parser makes, but shaping must still look inside it."""


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=4)
                   | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3).map(_Odd)),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(NAMES), values, max_size=8)


@st.composite
def shapings(draw: st.DrawFn) -> Shaping:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))
    fields = []
    for name in names:
        sub = draw(st.none() | st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=4).map(tuple))
        fields.append(Field(name, sub))
    decided = draw(st.frozensets(st.sampled_from(NAMES).map(lambda n: (n,))
                                 | st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=4))
    return Shaping(tuple(fields), decided)


@settings(max_examples=400, deadline=None)
@given(records, shapings())
def test_shape_record_does_what_the_plain_version_did(record: dict[str, Any], shaping: Shaping) -> None:
    expected = copy.deepcopy(record)
    _reference_shape(expected, shaping)
    shape_record(record, shaping)
    assert record == expected
    assert list(record) == list(expected)  # the members kept keep their order


def test_shaping_looks_inside_containers_of_any_type_and_skips_nothing_else() -> None:
    shaping = Shaping((Field("id"), Field("vendor"), Field("user", ("id", "name"))), frozenset())
    record: dict[str, Any] = {
        "id": 1, "extra": "x",
        "vendor": _Odd({"id": 2, "name": "hidden", "type": "Person"}),
        "user": {"id": 3, "name": "n", "secret": 4, "nested": _Odd({"id": 5, "name": "deep"})},
    }
    shape_record(record, shaping)
    assert record == {"id": 1, "vendor": {"id": 2, "type": "Person"}, "user": {"id": 3, "name": "n"}}


def test_shaping_derived_parts_are_not_part_of_its_value() -> None:
    a = Shaping((Field("id"), Field("user", ("id",))), frozenset({("user", "id")}))
    b = Shaping((Field("id"), Field("user", ("id",))), frozenset({("user", "id")}))
    assert a == b and hash(a) == hash(b)
    assert a.keep == frozenset({"id", "user"})
    assert a.nested == {"id": None, "user": (frozenset({"id"}), frozenset({"id"}))}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=150), st.text(max_size=20), st.text(max_size=40))
@example(b"k" * 64, "caller", '"abc"')
@example(b"k" * 65, "caller", 'W/"abc"')  # longer than BLAKE2b's key: hashed down first
@example(b"\x00" * 200, "", " \udcff ")
def test_record_tag_mac_is_keyed_blake2b(key: bytes, caller: str, etag: str) -> None:
    sealer = Sealer.of(key, caller, "v1")
    message = sealer.scope + etag.strip().removeprefix("W/").encode("utf-8", "surrogateescape")
    short = key if len(key) <= 64 else hashlib.blake2b(key).digest()
    expected = hashlib.blake2b(message, key=short, digest_size=16).hexdigest()
    assert sealer.mac(etag) == expected
    assert sealer.verifies(expected, etag)
    assert Sealer.of(b"another key of the replicas", caller, "v1").mac(etag) != expected or key == (
        b"another key of the replicas")


def test_canonicalise_is_cached_bounded_and_refuses_every_time() -> None:
    target = "/api/v4/activities.json?fields=id,vendor%7Bid,name%7D&limit=5"
    assert canonicalise(target) is canonicalise(target)  # the second is the cached result
    assert canonicalise(target) == CanonicalTarget(("api", "v4", "activities.json"),
                                                   (("fields", "id,vendor{id,name}"), ("limit", "5")))
    info = canonicalise.cache_info()
    assert info.maxsize is not None and info.maxsize <= 4096
    for _ in range(2):
        with pytest.raises(BadRequestError):
            canonicalise("/api/v4/%zz")
