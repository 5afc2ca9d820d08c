"""Request bodies of policed writes: read strictly, checked, and re-encoded canonically.

What the backend receives is the re-encoding of what was checked (never the client's raw bytes), so a
duplicate key, a BOM, a charset trick or a NaN cannot mean one thing to us and another behind us.
Numbers keep their exact value (decimals as Decimal, big integers as int).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from .errors import BadRequestError, UnsupportedMediaError

MAX_DEPTH = 32


def check_content_type(content_type: str | None) -> None:
    """Only JSON in UTF-8: another charset could decode to a different document behind us."""
    if content_type is None:
        raise UnsupportedMediaError("a JSON body needs Content-Type: application/json")
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/json":
        raise UnsupportedMediaError("a JSON body needs Content-Type: application/json")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaError("only the utf-8 charset is accepted")


def parse_body(raw: bytes) -> Any:
    """Parse a write body; anything ambiguous is a 400."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise BadRequestError("the body starts with a byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the body is not UTF-8") from None
    _check_depth(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=Decimal,
            parse_constant=_no_constants,
        )
    except (ValueError, RecursionError, ArithmeticError):
        # ArithmeticError: a number Decimal cannot hold (1e9999999999999999999) is not one we can check.
        raise BadRequestError("the body is not valid JSON") from None
    if (isinstance(value, dict) and "_method" in value) or (
        isinstance(value, dict) and isinstance(value.get("data"), dict) and "_method" in value["data"]
    ):
        raise BadRequestError("method override parameters are not accepted")
    return value


def encode_body(value: Any) -> bytes:
    """Canonical JSON of a checked body; a lone surrogate cannot be encoded and is a 400."""
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequestError("the body holds an unpaired surrogate") from None


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _encode(v) for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadRequestError("the body repeats a key")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise BadRequestError(f"{name} is not JSON")


def _check_depth(text: str) -> None:
    """Refuse deep nesting before parsing, so the parser never recurses into it."""
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise BadRequestError("the body is nested too deeply")
        elif ch in "]}":
            depth -= 1
