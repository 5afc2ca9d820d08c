"""Streaming splitter for JSON index envelopes ({"data": [...], ...}) in bounded memory.

Yields each element of the top-level "data" array and every other top-level member as exact bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

import msgspec
import orjson

__all__ = ["Element", "EnvelopeError", "IndexSplitter", "Member"]


class EnvelopeError(ValueError):
    """The body is not a well-formed index envelope (or exceeds a limit)."""


@dataclass(slots=True)
class Element:
    """One element of the top-level "data" array: its exact bytes, no surrounding whitespace or comma.

    Not frozen: a frozen dataclass sets its field through object.__setattr__, and a big body makes
    millions of these."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class Member:
    """One top-level member other than "data": its decoded key and its value's exact bytes."""

    key: str
    raw: bytes


# --- byte patterns ---------------------------------------------------------------------------
# Every quantifier is possessive and every alternation starts with a distinct byte, so no
# pattern can backtrack: a failed match costs one linear pass, never more (hostile bodies).

# The rest of a string after its opening quote. It stops at the closing quote, or at the first
# byte it may not take: a raw control character, a bad escape, or an escape cut off by the end
# of the buffer. Escapes are checked exactly here because a wrong guess about `\"` would move
# every boundary after it.
_STR_BODY: Final = rb'[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4})[^"\\\x00-\x1f]*+)*+'
_STRING: Final = rb'"' + _STR_BODY + rb'"'
# Inside an element, only quotes and brackets matter for boundaries; everything else (numbers,
# literals, commas, colons) is left for orjson to validate when it parses the element.
_RUN: Final = rb'[^"\[\]{}]*+'

# The patterns below match wherever they are used (most accept the empty string), so match()
# never returns None there; the cast says so once, instead of a None check per call in hot loops.
_AlwaysMatch = Callable[[bytes, int], "re.Match[bytes]"]


def _always(pattern: bytes) -> _AlwaysMatch:
    return cast(_AlwaysMatch, re.compile(pattern).match)


_WS: Final = _always(rb"[ \t\n\r]*+")
_STRING_REST: Final = _always(_STR_BODY)
# Skips runs and whole strings; stops on a bracket, on a string that does not finish inside the
# buffer (or is invalid), or at the end of the buffer.
_SKIP: Final = _always(rb"(?:" + _RUN + _STRING + rb")*+" + _RUN)
# A number or literal; what it is made of is orjson's business, where it ends is ours.
_SCALAR: Final = _always(rb'[^ \t\n\r,:\[\]{}"]*+')
# A backslash whose escape may still be completed by the next chunk.
_PARTIAL_ESCAPE: Final = _always(rb"\\(?:u[0-9A-Fa-f]{0,3})?")


def _nested(levels: int) -> bytes:
    """Container contents with at most `levels` further levels of nesting, brackets matched."""
    inner = rb"(?:" + _RUN + _STRING + rb")*+" + _RUN
    for _ in range(levels):
        inner = rb"(?:" + _RUN + rb"(?:" + _STRING + rb"|\{" + inner + rb"\}|\[" + inner + rb"\]))*+" + _RUN
    return inner


# Fast path: one C-level match finds a whole container element plus the comma after it, which
# saves a trip through Python per bracket. Regex cannot count, so each entry handles a fixed
# nesting depth; anything deeper, cut off, or malformed falls back to the exact scanner below,
# which applies the same grammar, so both paths agree on every boundary.
_FAST_LEVELS: Final = 6
_FAST_ELEMENT: Final = tuple(
    re.compile(rb"(\{" + _nested(k) + rb"\}|\[" + _nested(k) + rb"\])[ \t\n\r]*+,[ \t\n\r]*+").match
    for k in range(_FAST_LEVELS + 1)
)

# How many candidate ends the bulk path tries before leaving a buffer to the exact scanner.
_BULK_TRIES: Final = 3
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])

# Once this many settled bytes of an unfinished token sit in the buffer, they are moved aside so
# that each new chunk is not copied together with an ever-growing token (quadratic otherwise).
_SPILL_BYTES: Final = 64 * 1024

# Every top-level key is kept to catch duplicates, so their total needs a bound of its own; an
# index envelope has a handful of short keys.
_MAX_KEYS_BYTES: Final = 64 * 1024

_QUOTE: Final = 0x22  # "
_COMMA: Final = 0x2C  # ,
_COLON: Final = 0x3A  # :
_LBRACKET: Final = 0x5B  # [
_BACKSLASH: Final = 0x5C  # \
_RBRACKET: Final = 0x5D  # ]
_LBRACE: Final = 0x7B  # {
_RBRACE: Final = 0x7D  # }
_NOT_A_VALUE: Final = frozenset(b",:]}")

# Envelope states: what the next non-whitespace byte may be.
_START: Final = 0  # "{"
_FIRST_KEY: Final = 1  # a key or "}"
_KEY: Final = 2  # a key (after ",")
_AFTER_KEY: Final = 3  # ":"
_VALUE: Final = 4  # a member value, or "[" for data
_AFTER_MEMBER: Final = 5  # "," or "}"
_FIRST_ELEMENT: Final = 6  # an element or "]"
_ELEMENT: Final = 7  # an element (after ",")
_AFTER_ELEMENT: Final = 8  # "," or "]"
_DONE: Final = 9  # nothing but whitespace
_FINISHED: Final = 10  # finish() returned
_FAILED: Final = 11  # an error was raised; the splitter refuses all further input

# Kinds of token under way (a value or key whose end has not been seen yet).
_NO_TOKEN: Final = 0
_TOK_KEY: Final = 1
_TOK_MEMBER: Final = 2
_TOK_ELEMENT: Final = 3


class IndexSplitter:
    """Incremental splitter: feed() body chunks in order, then finish().

    Depth counts the envelope object as 1 and the data array as 2, so an object element is at 3.
    Top-level keys, together, may take at most 64 KiB (they are kept to find duplicates).
    After any EnvelopeError the splitter stays failed.
    """

    __slots__ = (
        "_buf",
        "_data_seen",
        "_dropped",
        "_fast",
        "_in_str",
        "_key",
        "_key_bytes",
        "_keys",
        "_max_depth",
        "_max_element",
        "_max_member",
        "_parts",
        "_pos",
        "_scan",
        "_spilled",
        "_stack",
        "_state",
        "_tok",
        "_tok_start",
    )

    def __init__(
        self,
        *,
        max_element_bytes: int = 8 * 1024 * 1024,
        max_member_bytes: int = 1024 * 1024,
        max_depth: int = 64,
    ) -> None:
        if max_element_bytes < 1 or max_member_bytes < 1:
            raise ValueError("size limits must be positive")
        if max_depth < 2:
            raise ValueError("max_depth must be at least 2 (the envelope object and the data array)")
        self._max_element = max_element_bytes
        self._max_member = max_member_bytes
        self._max_depth = max_depth
        levels = min(_FAST_LEVELS, max_depth - 3)
        self._fast = _FAST_ELEMENT[levels] if levels >= 0 else None
        self._buf = b""
        self._pos = 0  # next byte of _buf to examine when no token is under way
        self._dropped = 0  # bytes discarded before _buf[0]; only for error offsets
        self._state = _START
        self._tok = _NO_TOKEN
        self._tok_start = 0  # where the token under way starts in _buf (after any spilled part)
        self._scan = 0  # where scanning of the token under way resumes
        self._in_str = False
        self._stack = bytearray()  # closers expected by the token under way, innermost last
        self._parts: list[bytes] = []  # spilled, already-scanned bytes of the token under way
        self._spilled = 0
        self._key = ""
        self._keys: set[str] = set()
        self._key_bytes = 0
        self._data_seen = False

    @property
    def data_seen(self) -> bool:
        """True once the "data" array has been fully closed."""
        return self._data_seen

    def feed(self, chunk: bytes) -> list[Element | Member]:
        """Take the next chunk; return the elements and members it completed, in order."""
        self._check_usable()
        out: list[Element | Member] = []
        try:
            self._append(chunk)
            self._run(out)
        except BaseException:
            # Whatever went wrong, the scanner's position can no longer be trusted.
            self._state = _FAILED
            raise
        return out

    def finish(self) -> list[Element | Member]:
        """Declare the end of the body; raise EnvelopeError unless the envelope was complete."""
        self._check_usable()
        if self._state != _DONE:
            self._state = _FAILED
            raise EnvelopeError(f"body ends early at byte {self._dropped + len(self._buf)}")
        self._state = _FINISHED
        self._buf = b""
        # Everything was already returned by feed(); the list keeps the two calls symmetric.
        return []

    # --- internals ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state == _FAILED:
            raise EnvelopeError("splitter already failed on this body")
        if self._state == _FINISHED:
            raise EnvelopeError("splitter already finished")

    def _append(self, chunk: bytes) -> None:
        """Drop consumed bytes, spill the settled part of a long token, and add the chunk."""
        buf = self._buf
        if self._tok:
            settled = self._scan - self._tok_start
            if settled >= _SPILL_BYTES:
                # Scanning never looks behind _scan again, so those bytes only need keeping.
                self._parts.append(buf[self._tok_start : self._scan])
                self._spilled += settled
                self._tok_start = self._scan
            keep = self._tok_start
            self._tok_start = 0
            self._scan -= keep
        else:
            keep = self._pos
        self._pos = 0
        self._dropped += keep
        self._buf = buf[keep:] + chunk if keep < len(buf) else bytes(chunk)

    def _error(self, message: str, at: int) -> EnvelopeError:
        # Offsets, never content: messages get logged and the content may be confidential.
        return EnvelopeError(f"{message} at byte {self._dropped + at}")

    def _run(self, out: list[Element | Member]) -> None:
        buf = self._buf
        n = len(buf)
        p = self._pos
        append = out.append
        while True:
            if self._tok:
                end = self._scan_token(buf, n)
                if end < 0:
                    limit = self._limit()
                    origin = self._tok_start - self._spilled
                    if n - origin > limit:
                        raise self._error("value exceeds the size limit", origin)
                    return
                p = self._complete(end, append)
                continue
            p = _WS(buf, p).end()
            if p >= n:
                self._pos = p
                return
            c = buf[p]
            state = self._state
            if state == _ELEMENT or state == _FIRST_ELEMENT:
                if c == _RBRACKET and state == _FIRST_ELEMENT:
                    p = self._close_data(p)
                    continue
                if c == _LBRACE:
                    p = self._bulk(buf, p, n, append)
                    if p >= n:
                        self._pos = p
                        return
                    c = buf[p]
                fast = self._fast
                if fast is not None and (c == _LBRACE or c == _LBRACKET):
                    limit = self._max_element
                    m = fast(buf, p)
                    while m is not None:
                        end = m.end(1)
                        if end - p > limit:
                            raise self._error("element exceeds the size limit", p)
                        append(Element(buf[p:end]))
                        p = m.end()
                        m = fast(buf, p)
                    # The fast path ate the commas, so whatever comes next must be an element.
                    self._state = _ELEMENT
                    if p >= n:
                        self._pos = p
                        return
                    c = buf[p]
                self._begin(_TOK_ELEMENT, p, c)
            elif state == _AFTER_ELEMENT:
                if c == _COMMA:
                    self._state = _ELEMENT
                    p += 1
                elif c == _RBRACKET:
                    p = self._close_data(p)
                else:
                    raise self._error("expected ',' or ']' after an element", p)
            elif state == _FIRST_KEY or state == _KEY:
                if c == _QUOTE:
                    self._begin(_TOK_KEY, p, c)
                elif c == _RBRACE and state == _FIRST_KEY:
                    p = self._close_envelope(p)
                else:
                    raise self._error("expected a key", p)
            elif state == _AFTER_KEY:
                if c != _COLON:
                    raise self._error("expected ':'", p)
                self._state = _VALUE
                p += 1
            elif state == _VALUE:
                if self._key == "data":
                    if c != _LBRACKET:
                        raise self._error('"data" is not an array', p)
                    self._state = _FIRST_ELEMENT
                    p += 1
                else:
                    self._begin(_TOK_MEMBER, p, c)
            elif state == _AFTER_MEMBER:
                if c == _COMMA:
                    self._state = _KEY
                    p += 1
                elif c == _RBRACE:
                    p = self._close_envelope(p)
                else:
                    raise self._error("expected ',' or '}' after a member", p)
            elif state == _START:
                if c != _LBRACE:
                    raise self._error("body is not a JSON object", p)
                self._state = _FIRST_KEY
                p += 1
            else:  # _DONE
                raise self._error("data after the end of the body", p)

    def _bulk(self, buf: bytes, p: int, n: int, append: Callable[[Element | Member], None]) -> int:
        """Slice many object elements in one C call; return where the exact scanner resumes.

        A candidate end is a `},{` (compact JSON between records). msgspec decoding
        `[` + buf[p:candidate] + `]` succeeds only if those bytes are whole JSON values tokenized
        from p, where an element starts: so the candidate is an element boundary, exactly. A
        candidate inside a string or a nested list fails to decode and the one before it is tried;
        after a few, or on anything the limits might refuse, the exact scanner takes over from p.
        """
        end = n
        for _ in range(_BULK_TRIES):
            end = buf.rfind(b"},{", p, end)
            if end < 0:
                return p
            try:
                items = _RAW_LIST.decode(b"[" + buf[p : end + 1] + b"]")
            except msgspec.DecodeError:
                continue
            limit = self._max_element
            room = self._max_depth - 2  # an element at depth 3 may open this many levels
            elements = []
            for item in items:
                raw = bytes(item)
                if len(raw) > limit or raw.count(b"{") + raw.count(b"[") > room:
                    return p  # the exact scanner finds the offending element and says where
                elements.append(Element(raw))
            for element in elements:
                append(element)
            self._state = _ELEMENT  # the comma after the last one is eaten: an element follows
            return end + 2
        return p

    def _limit(self) -> int:
        """Size limit of the token under way."""
        if self._tok == _TOK_ELEMENT:
            return self._max_element
        if self._tok == _TOK_MEMBER:
            return self._max_member
        return _MAX_KEYS_BYTES - self._key_bytes

    def _close_data(self, p: int) -> int:
        self._data_seen = True
        self._state = _AFTER_MEMBER
        return p + 1

    def _close_envelope(self, p: int) -> int:
        if not self._data_seen:
            raise self._error('body has no "data" member', p)
        self._state = _DONE
        return p + 1

    def _begin(self, kind: int, p: int, c: int) -> None:
        """Start a token whose first byte c is at p; _run then scans it to its end."""
        if c in _NOT_A_VALUE:
            raise self._error("expected a value", p)
        self._stack.clear()
        self._in_str = c == _QUOTE
        if c == _LBRACE or c == _LBRACKET:
            if (2 if kind == _TOK_ELEMENT else 1) + 1 > self._max_depth:
                raise self._error("nesting exceeds the depth limit", p)
            self._stack.append(c + 2)  # "[" + 2 == "]", "{" + 2 == "}"
        self._tok = kind
        self._tok_start = p
        self._scan = p + 1

    def _scan_token(self, buf: bytes, n: int) -> int:
        """Scan the token under way; return its end, or -1 after saving state if it needs more."""
        s = self._scan
        stack = self._stack
        in_str = self._in_str
        if not in_str and not stack:
            # A scalar ends at the first byte that cannot belong to it; the envelope state then
            # decides whether that byte is acceptable there.
            s = _SCALAR(buf, s).end()
            if s >= n:
                self._scan = s
                return -1
            return s
        room = self._max_depth - (2 if self._tok == _TOK_ELEMENT else 1)
        while True:
            if in_str:
                s = _STRING_REST(buf, s).end()
                if s >= n:
                    break
                b = buf[s]
                if b == _QUOTE:
                    s += 1
                    in_str = False
                    if not stack:
                        return s
                elif b == _BACKSLASH:
                    if _PARTIAL_ESCAPE(buf, s).end() == n:
                        break  # resume at the backslash once the rest of the escape arrives
                    raise self._error("invalid escape in string", s)
                else:
                    raise self._error("control character in string", s)
            else:
                s = _SKIP(buf, s).end()
                if s >= n:
                    break
                b = buf[s]
                s += 1
                if b == _QUOTE:
                    in_str = True
                elif b == _LBRACE or b == _LBRACKET:
                    if len(stack) >= room:
                        raise self._error("nesting exceeds the depth limit", s - 1)
                    stack.append(b + 2)
                elif b == stack[-1]:
                    stack.pop()
                    if not stack:
                        return s
                else:
                    raise self._error("mismatched bracket", s - 1)
        self._scan = s
        self._in_str = in_str
        return -1

    def _complete(self, end: int, append: Callable[[Element | Member], None]) -> int:
        """Emit the token that ends at end; return the position after it."""
        kind = self._tok
        start = self._tok_start
        origin = start - self._spilled  # spilled bytes were counted in _dropped
        size = end - origin
        raw = self._buf[start:end]
        if self._parts:
            self._parts.append(raw)
            raw = b"".join(self._parts)
            self._parts = []
            self._spilled = 0
        self._tok = _NO_TOKEN
        if kind == _TOK_ELEMENT:
            if size > self._max_element:
                raise self._error("element exceeds the size limit", origin)
            append(Element(raw))
            self._state = _AFTER_ELEMENT
        elif kind == _TOK_MEMBER:
            if size > self._max_member:
                raise self._error("member exceeds the size limit", origin)
            append(Member(self._key, raw))
            self._state = _AFTER_MEMBER
        else:
            self._key_bytes += size
            if self._key_bytes > _MAX_KEYS_BYTES:
                raise self._error("top-level keys exceed the size limit", origin)
            try:
                key = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise self._error("key is not a valid JSON string", origin) from None
            if not isinstance(key, str):  # cannot happen: the token began with a quote
                raise self._error("key is not a string", origin)
            if key in self._keys:
                raise self._error("duplicate top-level key", origin)
            self._keys.add(key)
            self._key = key
            self._state = _AFTER_KEY
        return end
