"""Index bodies ({"data": [...], "meta": {...}}) whose records no rule reads.

When a caller's plan has nothing to decide and nothing to strip (an all-visible caller, or fields
that reach no rule), the records go out as the backend's exact bytes. They are still parsed in
full: msgspec validates the JSON without building Python objects for what it skips, which costs a
fifth to a third of orjson's loads and dumps of the same bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from .errors import UndecidableError
from .jsonkeys import refuse_repeated_keys
from .jsonstream import EnvelopeError, IndexSplitter

_OPEN_BRACE = ord("{")


class _Index(msgspec.Struct, forbid_unknown_fields=True):
    data: list[msgspec.Raw]
    meta: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # decoded by orjson, after its keys are checked


class _Object(msgspec.Struct):
    """Any JSON object: no fields, so every key is validated and skipped."""


_DECODE = msgspec.json.Decoder(_Index)
_CHECK_OBJECT = msgspec.json.Decoder(_Object)
_ENCODE = msgspec.json.Encoder()


def _check_utf8(raw: bytes, what: str) -> None:
    if not raw.isascii():
        try:
            raw.decode()  # msgspec does not check the UTF-8 of strings it only skips or slices
        except UnicodeDecodeError:
            raise UndecidableError(f"{what} is not UTF-8") from None


def check_record(raw: bytes) -> None:
    """One streamed record that goes out as it came: it must be a well-formed JSON object."""
    _check_utf8(raw, "a record")
    try:
        _CHECK_OBJECT.decode(raw)
    except msgspec.ValidationError:
        raise UndecidableError("a record is not an object") from None
    except msgspec.DecodeError:
        raise UndecidableError("a record is not valid JSON") from None


def split_index(raw: bytes) -> tuple[list[msgspec.Raw], Any]:
    """The records' exact bytes and the decoded meta (msgspec.UNSET when absent).

    Refuses what the record-by-record path refuses: a body that is not JSON or not UTF-8, members
    other than data and meta, a repeated member, data that is not a list, records that are not
    objects, and a meta that repeats a key. Keys repeated inside a record are not looked for: no
    rule reads these records, which go out as the backend's bytes, repeats and all.
    """
    _check_utf8(raw, "the backend's index body")
    try:
        index = _DECODE.decode(raw)
    except msgspec.ValidationError:
        raise UndecidableError("the backend's index body is not {\"data\": [...], \"meta\": {...}}") from None
    except msgspec.DecodeError:
        raise UndecidableError("the backend's index body is malformed") from None
    for record in index.data:
        if memoryview(record)[0] != _OPEN_BRACE:
            raise UndecidableError("a record is not an object")
    _refuse_repeated_members(raw, index.data, index.meta)
    if index.meta is msgspec.UNSET:
        return index.data, msgspec.UNSET
    return index.data, decode_meta(bytes(index.meta))


def decode_meta(meta_raw: bytes) -> Any:
    """An index's meta, as every path reads it: orjson, under the one repeated-key policy."""
    try:
        meta = orjson.loads(meta_raw)  # msgspec validated it, but takes numbers orjson does not (1e400)
    except orjson.JSONDecodeError:
        raise UndecidableError("the index meta is not valid JSON") from None
    refuse_repeated_keys(meta_raw, meta, "the index meta")
    return meta


_LEAST_ENVELOPE = len(b'{"data":[]}')
_LEAST_META = len(b',"meta":')


def _solid(raw: Any) -> int:
    """How many bytes are not JSON whitespace (bytes.translate: one C pass)."""
    return 0 if raw is msgspec.UNSET else len(bytes(raw).translate(None, b" \t\n\r"))


def _refuse_repeated_members(raw: bytes, records: list[msgspec.Raw], meta: Any) -> None:
    """msgspec keeps the last of two `data` (or `meta`) members silently: refuse a repeat.

    The envelope is the body less the records and meta, whose exact bytes msgspec gives. Written
    compactly with plain keys (as most backends write it) it has a known least length; a repeated
    member (or a key spelled with escapes, `"d\\u0061ta"`) adds bytes, so a body of exactly that
    length repeats nothing, known without reading it again; with whitespace, the same holds of
    its bytes that are not whitespace. Any other body (escaped keys, repeats) goes through the
    streamed splitter, which decodes each top-level key and refuses a repeat: both paths agree.
    """
    envelope = len(raw) - sum(map(len, records))
    least = _LEAST_ENVELOPE + max(len(records) - 1, 0)
    if meta is not msgspec.UNSET:
        envelope -= len(meta)
        least += _LEAST_META
    if envelope == least:
        return
    if envelope > least and _solid(raw) - _solid(b"".join(records)) - _solid(meta) == least:
        return  # the same, once whitespace is left out (the records' own whitespace cancels out)
    splitter = IndexSplitter(max_element_bytes=len(raw), max_member_bytes=len(raw))
    try:
        splitter.feed(raw)
        splitter.finish()
    except EnvelopeError:
        raise UndecidableError("the backend's index envelope repeats a member") from None


def join_index(records: list[msgspec.Raw], meta: Any) -> bytes:
    """{"data": [...]} with the records' bytes as they are, and meta when the backend sent one."""
    if meta is msgspec.UNSET:
        return _ENCODE.encode({"data": records})
    return _ENCODE.encode({"data": records, "meta": meta})
