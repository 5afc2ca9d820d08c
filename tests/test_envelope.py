"""Tests for proxy.envelope: the path for records no rule reads keeps their exact bytes, and refuses
every body the record-by-record path refuses."""

from __future__ import annotations

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.envelope import join_index, split_index
from proxy.errors import UndecidableError
from tests.test_jsonstream import OBJECTS, TEXT, Json, envelope, mutate


@st.composite
def indexes(draw: st.DrawFn) -> tuple[bytes, list[Json], dict[str, Json] | None]:
    data = draw(st.lists(OBJECTS, max_size=6))
    meta = {"paging": {"next": draw(TEXT)}, "records": len(data)} if draw(st.booleans()) else None
    order = [("data", None)] + ([("meta", meta)] if meta is not None else [])
    order = draw(st.permutations(order))
    return envelope(data, order, draw(st.randoms(use_true_random=False))), data, meta


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(indexes())
def test_records_keep_their_exact_bytes_and_the_document_its_meaning(
    index: tuple[bytes, list[Json], dict[str, Json] | None],
) -> None:
    body, data, meta = index
    records, got_meta = split_index(body)
    assert [orjson.loads(bytes(r)) for r in records] == data
    assert all(bytes(r) in body for r in records)  # the backend's own bytes, whitespace and escapes
    assert (got_meta is msgspec.UNSET) == (meta is None)
    expected = {"data": data} if meta is None else {"data": data, "meta": meta}
    assert orjson.loads(join_index(records, got_meta)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(indexes(), st.data())
def test_a_mutated_body_is_refused_or_means_what_orjson_reads(
    index: tuple[bytes, list[Json], dict[str, Json] | None], data: st.DataObject,
) -> None:
    mutated = mutate(index[0], data)
    try:
        records, meta = split_index(mutated)
    except UndecidableError:
        return
    try:
        whole = orjson.loads(mutated)
    except orjson.JSONDecodeError as exc:
        # msgspec reads a number past a double's range as infinity where orjson refuses; either way
        # it is the backend's own text going out, and no rule reads it on this path.
        assert "infinity" in str(exc), (mutated, exc)
        return
    assert set(whole) <= {"data", "meta"} and isinstance(whole["data"], list)
    assert all(isinstance(r, dict) for r in whole["data"])
    assert orjson.loads(join_index(records, meta)) == whole


@pytest.mark.parametrize("body", [
    b'', b'[]', b'{"data":{}}', b'{"data":[1]}', b'{"data":["x"]}', b'{"data":[null]}', b'{"data":[[]]}',
    b'{"meta":{}}', b'{"data":[],"debug":{}}', b'{"data":[{"a":1}', b'{"data":[{"a":"\xff"}]}',
    b'{"data":[{"a":"\\ud800"}]}', b'{"data":[{"a":01}]}', b'{"data":[{"a":1,}]}', b'\xef\xbb\xbf{"data":[]}',
    b'{"data":[]}x', b'{"data":[{"a":"\x01"}]}',
])
def test_refused(body: bytes) -> None:
    with pytest.raises(UndecidableError):
        split_index(body)
