"""Tests for proxy.jsonstream: exact element boundaries for any valid envelope, errors otherwise."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.jsonstream import Element, EnvelopeError, IndexSplitter, Member

Json = Any
Envelope = tuple[bytes, list[Json], list[tuple[str, Json]]]  # body, its data elements, its other members


# --- helpers ---------------------------------------------------------------------------------


def chunked(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({0, len(body), *(c for c in cuts if 0 <= c <= len(body))})
    return [body[a:b] for a, b in itertools.pairwise(points)]


def every(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def split(chunks: Iterable[bytes], **limits: int) -> list[Element | Member]:
    splitter = IndexSplitter(**limits)
    out: list[Element | Member] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    out += splitter.finish()
    assert splitter.data_seen
    return out


def elements(items: list[Element | Member]) -> list[Json]:
    return [orjson.loads(i.raw) for i in items if isinstance(i, Element)]


def members(items: list[Element | Member]) -> list[tuple[str, Json]]:
    return [(i.key, orjson.loads(i.raw)) for i in items if isinstance(i, Member)]


def rejects(chunks: Iterable[bytes], match: str | None = None, **limits: int) -> None:
    with pytest.raises(EnvelopeError, match=match):
        split(chunks, **limits)


# --- a serializer that varies everything JSON lets a producer vary ---------------------------

WHITESPACE = ["", "", "", " ", "\n", "\t", "\r\n  ", "  "]
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def encode_string(text: str, rnd: random.Random) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in SHORT_ESCAPES and rnd.random() < 0.7:
            out.append(SHORT_ESCAPES[ch])
        elif ch in '"\\' or code < 0x20 or rnd.random() < 0.1:
            if ch == "/" and rnd.random() < 0.5:
                out.append("\\/")
            elif code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                hexits = f"{code:04x}"
                out.append("\\u" + (hexits.upper() if rnd.random() < 0.5 else hexits))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dump(value: Json, rnd: random.Random) -> str:
    def ws() -> str:
        return rnd.choice(WHITESPACE)

    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return encode_string(value, rnd)
    if isinstance(value, list):
        inner = ",".join(ws() + dump(v, rnd) + ws() for v in value)
        return "[" + (inner or ws()) + "]"
    inner = ",".join(ws() + encode_string(k, rnd) + ws() + ":" + ws() + dump(v, rnd) + ws() for k, v in value.items())
    return "{" + (inner or ws()) + "}"


def envelope(data: list[Json], others: list[tuple[str, Json]], rnd: random.Random) -> bytes:
    """The body with members in the given order; "data" goes wherever ("data", None) sits."""
    parts = [
        rnd.choice(WHITESPACE) + encode_string(k, rnd) + rnd.choice(WHITESPACE) + ":" + rnd.choice(WHITESPACE)
        + dump(data if k == "data" else v, rnd) + rnd.choice(WHITESPACE)
        for k, v in others
    ]
    return (rnd.choice(WHITESPACE) + "{" + ",".join(parts) + "}" + rnd.choice(WHITESPACE)).encode()


TRICKY = st.sampled_from(['"', "\\", "]", "}", "{", "[", ",", ":", "/", "é", "\u2028", "\x00", "\n", "😀", "u", " "])
TEXT = st.text(st.one_of(TRICKY, st.characters(codec="utf-8")), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, VALUES, max_size=5)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    data = draw(st.lists(st.one_of(OBJECTS, VALUES), max_size=6))
    meta = {"paging": {"next": draw(TEXT)}, "records": len(data)}
    extra = draw(st.dictionaries(TEXT.filter(lambda k: k not in ("data", "meta")), VALUES, max_size=2))
    others = [("meta", meta), *extra.items()]
    order = draw(st.permutations([("data", None), *others]))
    body = envelope(data, order, draw(st.randoms(use_true_random=False)))
    return body, data, [(k, v) for k, v in order if k != "data"]


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes(), st.data())
def test_round_trip_in_random_chunks(env: Envelope, data: st.DataObject) -> None:
    body, expected_data, expected_members = env
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=30))
    out = split(chunked(body, cuts))
    assert elements(out) == expected_data
    assert members(out) == expected_members
    # No element carries surrounding whitespace.
    assert all(i.raw == i.raw.strip(b" \t\r\n") for i in out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes(), st.data())
def test_every_prefix_is_incomplete(env: Envelope, data: st.DataObject) -> None:
    body, expected_data, _ = env
    end = body.rindex(b"}") + 1
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=5))
    for length in range(end):
        splitter = IndexSplitter()
        got: list[Element | Member] = []
        try:
            for chunk in chunked(body[:length], cuts):
                got += splitter.feed(chunk)
        except EnvelopeError:
            pytest.fail(f"valid prefix of length {length} rejected")
        # Whatever was yielded early is exactly what the whole body yields first.
        assert elements(got) == expected_data[: len(elements(got))]
        with pytest.raises(EnvelopeError):
            splitter.finish()
    for length in range(end, len(body) + 1):  # only trailing whitespace is missing: complete
        assert elements(split([body[:length]])) == expected_data


MUTATION_BYTES = b'"\\[]{},: \x01a0e-'


def mutate(body: bytes, data: st.DataObject) -> bytes:
    """One to three bytes inserted, deleted or replaced, from the bytes that matter to JSON."""
    out = bytearray(body)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(out)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(MUTATION_BYTES))
        if kind == "insert":
            out[at:at] = bytes([byte])
        elif at < len(out):
            out[at : at + 1] = b"" if kind == "delete" else bytes([byte])
    return bytes(out)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes(), st.data())
def test_mutated_bodies_never_change_meaning(env: Envelope, data: st.DataObject) -> None:
    """Accepting a broken body is fine only if orjson then rejects a piece, or the body means the same."""
    mutated = mutate(env[0], data)
    cuts = data.draw(st.lists(st.integers(0, len(mutated)), max_size=10))
    try:
        whole: Json = orjson.loads(mutated)
    except orjson.JSONDecodeError:
        whole = None
    try:
        out = split(chunked(mutated, cuts))
    except EnvelopeError as exc:
        if isinstance(whole, dict) and isinstance(whole.get("data"), list):
            # orjson takes the last of duplicate keys; the splitter refuses to pick one.
            assert "duplicate top-level key" in str(exc)
        return
    try:
        rebuilt = dict(members(out))
        rebuilt["data"] = elements(out)
    except orjson.JSONDecodeError:
        return  # the proxy's orjson.loads of that piece rejects the body
    assert whole == rebuilt


# --- explicit cases --------------------------------------------------------------------------

SAMPLE = (
    b' {"meta" :{"paging":{"next":"http://b/x?a=1&b=]"},"records":5},\n "data": [\n'
    b'  {"id":1,"s":"q\\"]}\\\\","n":[{"a":[1,{"b":[]}]}],"u":"\\u00e9\\ud83d\\ude00"},\n'
    b'  "\\\\", 12.5e-3 , null,[[]],\n  {"deep":[[[[[[[[["x"]]]]]]]]]}\n ],"z":true}\n'
)
SAMPLE_DATA = orjson.loads(SAMPLE)["data"]


def test_sample_whole_and_one_byte_chunks() -> None:
    whole = split([SAMPLE])
    assert whole == split(every(SAMPLE, 1))
    assert elements(whole) == SAMPLE_DATA
    assert members(whole) == [("meta", {"paging": {"next": "http://b/x?a=1&b=]"}, "records": 5}), ("z", True)]
    assert whole[1].raw == b'{"id":1,"s":"q\\"]}\\\\","n":[{"a":[1,{"b":[]}]}],"u":"\\u00e9\\ud83d\\ude00"}'
    assert [i.raw for i in whole[2:7]] == [b'"\\\\"', b"12.5e-3", b"null", b"[[]]", b'{"deep":[[[[[[[[["x"]]]]]]]]]}']


def test_every_two_chunk_split() -> None:
    expected = split([SAMPLE])
    for cut in range(len(SAMPLE) + 1):
        assert split([SAMPLE[:cut], SAMPLE[cut:]]) == expected, cut


@pytest.mark.parametrize(
    "element",
    [b'"a\\\\"', b'"\\\\\\""', b'{"k":"\\\\"}', b'["\\"","\\\\",  "\\\\\\\\"]', b'"\\u005c"', b'"\\u0022]"', b'"\\/"'],
)
def test_escapes_at_every_chunk_boundary(element: bytes) -> None:
    body = b'{"data":[' + element + b"," + element + b"]}"
    expected = [orjson.loads(element)] * 2
    for cut in range(len(body) + 1):
        assert elements(split([body[:cut], body[cut:]])) == expected
    assert elements(split(every(body, 1))) == expected
    assert [i.raw for i in split([body])] == [element, element]


def test_empty_data() -> None:
    for body in (b'{"data":[]}', b'{ "data" : [ \n ] }', b'{"meta":{},"data":[]}'):
        assert elements(split([body])) == []
    splitter = IndexSplitter()
    assert splitter.feed(b'{"data":[') == []
    assert not splitter.data_seen
    splitter.feed(b"]")
    assert splitter.data_seen


def test_data_not_first_and_members_yielded_when_complete() -> None:
    splitter = IndexSplitter()
    assert splitter.feed(b'{"meta":{"records":1') == []
    assert splitter.feed(b'},"data":[{"a":1') == [Member("meta", b'{"records":1}')]
    assert splitter.feed(b"}") == [Element(b'{"a":1}')]
    assert splitter.feed(b",2") == []  # a number may go on
    assert splitter.feed(b"]") == [Element(b"2")]
    assert splitter.feed(b',"n":7') == []
    assert splitter.feed(b"}") == [Member("n", b"7")]
    assert splitter.finish() == []


def test_escaped_key_is_decoded() -> None:
    out = split([b'{"d\\u0061ta":[1],"m\\u00e9ta\\n":"x"}'])
    assert out == [Element(b"1"), Member("méta\n", b'"x"')]


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[],"data":[]}',
        b'{"meta":1,"data":[],"meta":2}',
        b'{"data":[],"d\\u0061ta":[]}',
    ],
)
def test_duplicate_key(body: bytes) -> None:
    rejects([body], "duplicate")


@pytest.mark.parametrize("value", [b"{}", b'{"a":[]}', b'"[]"', b"1", b"null", b"true"])
def test_data_not_an_array(value: bytes) -> None:
    rejects([b'{"data":' + value + b"}"], "not an array")


@pytest.mark.parametrize("body", [b"{}", b'{"meta":{"data":[]}}', b'{"datas":[]}'])
def test_data_missing(body: bytes) -> None:
    rejects([body], 'no "data"')


@pytest.mark.parametrize("tail", [b"x", b"{}", b",", b"]", b"\x00", b" \n}", b"\xef\xbb\xbf"])
def test_garbage_after_end(tail: bytes) -> None:
    rejects([b'{"data":[1]}' + tail], "after the end")
    rejects([b'{"data":[1]} \n', tail], "after the end")


def test_trailing_whitespace_is_fine() -> None:
    assert elements(split([b'{"data":[1]}', b" \r\n\t", b"  "])) == [1]


@pytest.mark.parametrize("body", [b'\xef\xbb\xbf{"data":[]}', b'[{"data":[]}]', b'"data"', b'x{"data":[]}', b"\x00{}"])
def test_not_an_object(body: bytes) -> None:
    rejects([body], "not a JSON object")
    rejects(every(body, 1), "not a JSON object")


@pytest.mark.parametrize(
    "body", [b"", b"   ", b"{", b'{"data"', b'{"data":[1', b'{"data":[1]', b'{"data":["ab\\', b'{"data":[1],"m":12']
)
def test_truncated(body: bytes) -> None:
    rejects([body], "ends early")


def test_depth_limit() -> None:
    # The envelope is depth 1 and the data array depth 2, so with max_depth=5 an element may nest 3 deep.
    assert elements(split([b'{"data":[[[1]],{"a":{"b":2}}]}'], max_depth=5)) == [[[1]], {"a": {"b": 2}}]
    rejects([b'{"data":[[[[[1]]]]]}'], "depth", max_depth=5)
    rejects([b'{"data":[{"a":{"b":{"c":{}}}}]}'], "depth", max_depth=5)
    assert members(split([b'{"data":[],"m":[[[1]]]}'], max_depth=4)) == [("m", [[[1]]])]
    rejects([b'{"data":[],"m":[[[[1]]]]}'], "depth", max_depth=4)
    # Default limit, past the depths the fast path handles: 62 levels fit, 63 do not.
    assert elements(split([b'{"data":[' + b"[" * 62 + b"]" * 62 + b"]}"])) == [orjson.loads(b"[" * 62 + b"]" * 62)]
    rejects([b'{"data":[' + b"[" * 63 + b"]" * 63 + b"]}"], "depth")
    # With max_depth=2 only scalar elements fit.
    assert elements(split([b'{"data":[1,"a"]}'], max_depth=2)) == [1, "a"]
    rejects([b'{"data":[[]]}'], "depth", max_depth=2)


def test_deep_elements_beyond_the_fast_path() -> None:
    deep = {"a": [{"b": [{"c": [{"d": [{"e": ["]}\\\""]}]}]}]}]}
    body = b'{"data":[' + b",".join([orjson.dumps(deep)] * 5) + b"]}"
    assert elements(split([body])) == [deep] * 5
    assert elements(split(every(body, 3))) == [deep] * 5


def test_element_size_limit() -> None:
    assert elements(split([b'{"data":["12345678",[1,2,3,4]]}'], max_element_bytes=10)) == ["12345678", [1, 2, 3, 4]]
    for element in (b'"123456789"', b"[1,2,3,4,5,67]", b"12345678901", b'{"a":"12345"}'):
        rejects([b'{"data":[1,' + element + b",2]}"], "size limit", max_element_bytes=10)
        rejects([b'{"data":[1,' + element + b"]}"], "size limit", max_element_bytes=10)


def test_oversized_element_fails_while_it_grows() -> None:
    splitter = IndexSplitter(max_element_bytes=100_000)
    splitter.feed(b'{"data":[{"a":"')
    with pytest.raises(EnvelopeError, match="size limit"):
        for _ in range(200):  # never closed: the limit must trip on its own
            splitter.feed(b"x" * 1000)
    with pytest.raises(EnvelopeError, match="already failed"):
        splitter.feed(b'"}]}')


def test_member_size_limit() -> None:
    assert members(split([b'{"data":[],"m":"1234"}'], max_member_bytes=6)) == [("m", "1234")]
    rejects([b'{"data":[],"m":"12345"}'], "size limit", max_member_bytes=6)
    rejects([b'{"data":[],"m":[1,2,3]}'], "size limit", max_member_bytes=6)
    # Keys are remembered (duplicates), so together they have a fixed budget of their own.
    many = b",".join(b'"%d%s":0' % (i, b"k" * 1000) for i in range(70))
    rejects([b'{"data":[],' + many + b"}"], "keys exceed")
    rejects([b'{"data":[],"' + b"k" * 70_000], "size limit")


def test_large_element_in_small_chunks() -> None:
    big = {"text": "a\\\"b" * 50_000, "list": list(range(20_000)), "nested": [{"x": "y]"}] * 5_000}
    raw = orjson.dumps(big)
    body = b'{"data":[1,' + raw + b',2],"meta":{}}'
    for size in (997, 65_536):
        out = split(every(body, size))
        assert [i.raw for i in out if isinstance(i, Element)] == [b"1", raw, b"2"]


@pytest.mark.parametrize(
    "body",
    [b'{"data":[{]}', b'{"data":[[}]}', b'{"data":[{"a":[1}]}', b'{"data":[[1]]]}', b'{"data":[{"a":1}}]}',
     b'{"data":[1]]}', b'{"data":[}'],
)
def test_mismatched_brackets(body: bytes) -> None:
    with pytest.raises(EnvelopeError):
        split([body])
    with pytest.raises(EnvelopeError):
        split(every(body, 1))


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[1 2]}',
        b'{"data":[{} {}]}',
        b'{"data":["a" "b"]}',
        b'{"data":[[] 1]}',
        b'{"data":[1"a"]}',
        b'{"data":[] "meta":1}',
        b'{"data" []}',
        b'{"meta" 1,"data":[]}',
        b'{"data":[1,,2]}',
        b'{"data":[,1]}',
        b'{,"data":[]}',
        b'{"data":[],,"m":1}',
        b'{"data":[1:2]}',
        b'{"data":[]:1}',
        b'{"data"::[]}',
        b'{1:2,"data":[]}',
        b'{"m":,"data":[]}',
    ],
)
def test_missing_or_misplaced_separators(body: bytes) -> None:
    rejects([body])
    rejects(every(body, 1))


@pytest.mark.parametrize("body", [b'{"data":[1,]}', b'{"data":[{},]}', b'{"data":[1],}', b'{"data":[1],"m":2,}'])
def test_trailing_comma(body: bytes) -> None:
    rejects([body])


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":["a\x01b"]}',
        b'{"data":[{"k":"tab\there"}]}',
        b'{"data":[{"k\nx":1}]}',
        b'{"data":[],"m":"\x1f"}',
        b'{"da\x00ta":[]}',
        b'{"data":["\\\x0a"]}',
    ],
)
def test_control_character_in_string(body: bytes) -> None:
    rejects([body], "control character|invalid escape")
    rejects(every(body, 1), "control character|invalid escape")


@pytest.mark.parametrize("string", [b'"\\x"', b'"\\u12g4"', b'"\\U0041"', b'"\\u00"', b'"\\\'"'])
def test_invalid_escape(string: bytes) -> None:
    rejects([b'{"data":[' + string + b"]}"], "invalid escape")
    rejects(every(b'{"data":[{"k":' + string + b"}]}", 1), "invalid escape")
    rejects([b'{"data":[],' + string + b":1}"], "invalid escape")


def test_invalid_key_encoding_is_rejected() -> None:
    rejects([b'{"\\ud800":1,"data":[]}'], "not a valid JSON string")
    rejects([b'{"\xff":1,"data":[]}'], "not a valid JSON string")


def test_scalars_are_left_to_orjson_but_cannot_merge() -> None:
    out = split([b'{"data":[tru,-,1x,"a"],"m":nul}'])
    for item in out[:3]:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(item.raw)
    assert out[3] == Element(b'"a"')


def test_failed_and_finished_splitters_refuse_input() -> None:
    splitter = IndexSplitter()
    with pytest.raises(EnvelopeError):
        splitter.feed(b"[")
    with pytest.raises(EnvelopeError, match="already failed"):
        splitter.finish()
    splitter = IndexSplitter()
    splitter.feed(b'{"data":[]}')
    splitter.finish()
    with pytest.raises(EnvelopeError, match="finished"):
        splitter.feed(b" ")


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        IndexSplitter(max_depth=1)
    with pytest.raises(ValueError):
        IndexSplitter(max_element_bytes=0)


def _stream(records: int) -> Iterator[bytes]:
    record = orjson.dumps({"id": 1, "s": "x\\\"y]}" * 20, "o": {"a": [1, 2, {"b": None}]}})
    yield b'{"data":['
    block = b",".join([record] * 100)
    for i in range(records // 100):
        yield (b"," if i else b"") + block
    yield b'],"meta":{"records":%d}}' % records


def test_memory_stays_bounded() -> None:
    splitter = IndexSplitter()
    body_bytes = count = 0
    tracemalloc.start()
    try:
        pending = b""
        for piece in _stream(30_000):
            pending += piece
            while len(pending) >= 65_536:
                chunk, pending = pending[:65_536], pending[65_536:]
                body_bytes += len(chunk)
                count += len(splitter.feed(chunk))
        body_bytes += len(pending)
        count += len(splitter.feed(pending)) + len(splitter.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_001
    assert body_bytes > 5_000_000
    assert peak < 2_000_000  # a few chunks' worth, not the body


# --- the bulk path (msgspec slices runs of compact object elements) ---------------------------


class CountingDecoder:
    """Stands in for the bulk decoder; counts the slices it accepted."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.accepted = 0

    def decode(self, data: bytes) -> Any:
        out = self.real.decode(data)
        self.accepted += 1
        return out


class RefusingDecoder:
    def decode(self, data: bytes) -> Any:
        import msgspec

        raise msgspec.DecodeError("bulk path off")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OBJECTS, min_size=2, max_size=12), st.data())
def test_the_bulk_path_and_the_exact_scanner_agree(records: list[Json], data: st.DataObject) -> None:
    import proxy.jsonstream as js

    body = b'{"data":[' + b",".join(orjson.dumps(r) for r in records) + b'],"meta":{"records":1}}'
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    counting = CountingDecoder(js._RAW_LIST)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(js, "_RAW_LIST", RefusingDecoder())
        exact = split(chunked(body, cuts))
        m.setattr(js, "_RAW_LIST", counting)
        bulk = split(chunked(body, cuts))
    assert bulk == exact
    assert elements(bulk) == records


def test_the_bulk_path_is_taken_on_compact_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    import proxy.jsonstream as js

    records = [{"id": i, "note": "a},{b", "matter": {"id": i}, "tags": [{"x": 1}, {"y": 2}]} for i in range(500)]
    body = orjson.dumps({"data": records, "meta": {"records": 500}})
    counting = CountingDecoder(js._RAW_LIST)
    monkeypatch.setattr(js, "_RAW_LIST", counting)
    assert elements(split(every(body, 4096))) == records
    assert counting.accepted >= len(body) // 4096 - 1  # nearly every chunk went through in one call


def test_the_bulk_path_leaves_limits_to_the_exact_scanner() -> None:
    deep = orjson.dumps({"a": {"b": {"c": {}}}})
    rejects([b'{"data":[{"x":1},' + deep + b',{"x":2},{"x":3}]}'], "depth", max_depth=5)
    wide = b'{"a":[' + b",".join([b"{}"] * 70) + b"]}"  # many brackets, shallow: fine at the default depth
    assert elements(split([b'{"data":[' + wide + b"," + wide + b"," + wide + b"]}"])) == [orjson.loads(wide)] * 3
    big = orjson.dumps({"n": "x" * 50})
    rejects([b'{"data":[{"x":1},' + big + b',{"x":2},{"x":3}]}'], "size limit", max_element_bytes=40)
