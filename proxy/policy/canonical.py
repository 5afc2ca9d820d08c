"""Canonical form of a request target: the one spelling that is matched, decided on and forwarded.

Every spelling of a path (`.json` or not, `//`, trailing `/`, percent-encoded unreserved bytes, case)
maps to one canonical form; spellings that could mean something else to another parser (dot segments,
encoded separators, `;` parameters, bytes outside the grammar) are refused with 400. The query is
decoded strictly, de-duplicated (same value read once, different values refused) and re-encoded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from ..errors import BadRequestError

# RFC 3986 pchar without ';' (path parameters are refused) and without '%' (handled below).
_PATH_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/%]*\Z")
_QUERY_OK = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/?%\[\]{}]*\Z")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALUE_SAFE = ",{}()*:"
OVERRIDE_PARAMS = frozenset({"_method"})


@dataclass(frozen=True, slots=True)
class CanonicalTarget:
    segments: tuple[str, ...]       # decoded, case kept, `.json` kept on the last one
    query: tuple[tuple[str, str], ...]

    @property
    def match_segments(self) -> tuple[str, ...]:
        """Lower-cased, without a final `.json`: what policies are matched against."""
        low = [s.lower() for s in self.segments]
        if low and low[-1].endswith(".json") and len(low[-1]) > len(".json"):
            low[-1] = low[-1][: -len(".json")]
        return tuple(low)

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


@functools.lru_cache(maxsize=1024)
def canonicalise(raw_target: str) -> CanonicalTarget:
    """Canonicalise a raw request-target (aiohttp's `raw_path`, query included) or raise 400.

    Cached (bounded): clients repeat the same targets (a page, polled), and a CanonicalTarget is
    immutable. A refused target is refused again each time (lru_cache keeps only results)."""
    if not raw_target.startswith("/"):
        raise BadRequestError("request target must be a path")  # absolute- and authority-form, `*`
    path, _, query = raw_target.partition("?")
    return CanonicalTarget(_canonical_segments(path), canonical_query(query))


def _canonical_segments(path: str) -> tuple[str, ...]:
    if not _PATH_OK.match(path) or _BAD_PCT.search(path):
        raise BadRequestError("path contains bytes outside the grammar")

    def decode(m: re.Match[str]) -> str:
        byte = int(m.group(1), 16)
        if byte not in _UNRESERVED:
            # An encoded '/', '\', '%', NUL, ... could be decoded differently behind us: refuse.
            raise BadRequestError("path contains an encoded reserved byte")
        return chr(byte)

    decoded = _PCT.sub(decode, path)
    segments = tuple(s for s in decoded.split("/") if s)  # `//` and a trailing `/` collapse
    if any(s in (".", "..") for s in segments):
        raise BadRequestError("path contains dot segments")
    return segments


def canonical_query(query: str) -> tuple[tuple[str, str], ...]:
    if not query:
        return ()
    if not _QUERY_OK.match(query) or _BAD_PCT.search(query) or ";" in query:
        raise BadRequestError("query contains bytes outside the grammar")
    pairs: dict[str, list[str]] = {}
    for piece in query.split("&"):
        if not piece:
            continue
        raw_key, _, raw_value = piece.partition("=")
        key, value = _decode_component(raw_key), _decode_component(raw_value)
        if not key:
            raise BadRequestError("query has an empty parameter name")
        if key in OVERRIDE_PARAMS:
            raise BadRequestError("method override parameters are not accepted")
        values = pairs.setdefault(key, [])
        if key.endswith("[]"):
            values.append(value)  # array parameters repeat by design
        elif not values:
            values.append(value)
        elif values[0] != value:
            raise BadRequestError(f"query parameter {key!r} is repeated with different values")
    return tuple((k, v) for k, vs in pairs.items() for v in vs)


def _decode_component(text: str) -> str:
    try:
        decoded = unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("query is not UTF-8") from None
    if _CONTROL.search(decoded):
        raise BadRequestError("query contains control characters")
    return decoded


def encode_query(query: tuple[tuple[str, str], ...]) -> str:
    return "&".join(f"{quote(k, safe='[]')}={quote(v, safe=_VALUE_SAFE)}" for k, v in query)


def render_target(segments: tuple[str, ...], query: tuple[tuple[str, str], ...]) -> str:
    path = "/" + "/".join(segments)
    return f"{path}?{encode_query(query)}" if query else path
