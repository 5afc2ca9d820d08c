"""Index bodies ({"data": [...], "meta": {...}}) whose records no rule reads.

When a caller's plan has nothing to decide and nothing to strip (an all-visible caller, or fields
that reach no rule), the records go out as the backend's exact bytes. They are still parsed in
full: msgspec validates the JSON without building Python objects for what it skips, which costs a
fifth to a third of orjson's loads and dumps of the same bytes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import UndecidableError

_OPEN_BRACE = ord("{")


class _Index(msgspec.Struct, forbid_unknown_fields=True):
    data: list[msgspec.Raw]
    meta: Any = msgspec.UNSET


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
    other than data and meta, data that is not a list, and records that are not objects.
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
    return index.data, index.meta


def join_index(records: list[msgspec.Raw], meta: Any) -> bytes:
    """{"data": [...]} with the records' bytes as they are, and meta when the backend sent one."""
    if meta is msgspec.UNSET:
        return _ENCODE.encode({"data": records})
    return _ENCODE.encode({"data": records, "meta": meta})
