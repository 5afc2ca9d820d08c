"""Paging links of relayed JSON answers, moved from the backend's origin to the proxy's, streaming.

Only `meta.paging.next` and `meta.paging.previous` of the root object change, and only when they
name the backend's origin. The API puts `meta` last in an envelope, so only the last TAIL_BYTES of
a body are held back: bodies of any size stream in bounded memory, at the cost of a memcpy. A root
`meta` that is not among the last members (or larger than the tail) passes unchanged.

Why the member found is the root's: the body ends with `}`, and `{` followed by the bytes from an
unescaped `"meta"` key to the end must parse as one JSON object. That closes exactly one object,
so the key sits directly in the object the last `}` closes, the root.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
import orjson
from yarl import URL

from .links import rewrite_location

TAIL_BYTES: Final = 64 * 1024
MAX_TRIES: Final = 8
"""At most this many `"meta"` keys are tried, nearest the end first (a hostile tail cannot make it slow)."""

_META_KEY: Final = re.compile(rb'"meta"[ \t\n\r]*+:[ \t\n\r]*+')
_MEMBERS: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])


class PagingLinkRewriter:
    """Feed a body's chunks in order; each call returns the bytes to send now, `finish` the rest."""

    def __init__(self, upstream: URL, public: URL) -> None:
        self._upstream = upstream
        self._public = public
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        held = self._tail + chunk if self._tail else chunk
        if len(held) <= TAIL_BYTES:
            self._tail = held
            return b""
        cut = len(held) - TAIL_BYTES
        self._tail = held[cut:]
        return held[:cut]

    def finish(self) -> bytes:
        tail, self._tail = self._tail, b""
        return rewrite_tail(tail, self._upstream, self._public)


def rewrite_tail(tail: bytes, upstream: URL, public: URL) -> bytes:
    """The last bytes of a JSON body, with the root meta's paging links on the public origin."""
    end = len(tail.rstrip(b" \t\n\r"))
    if not end or tail[end - 1] != 0x7D:  # "}": only a root object has a `meta` member
        return tail
    at = end
    for _ in range(MAX_TRIES):
        at = tail.rfind(b'"meta"', 0, at)
        if at < 0:
            return tail
        if _escaped(tail, at):
            continue  # the quote ends a string that holds `\"meta`: not a key
        key = _META_KEY.match(tail, at)
        if key is None:
            continue
        try:
            members = _MEMBERS.decode(b"{" + tail[at:end])
        except msgspec.DecodeError:
            continue
        raw = bytes(members["meta"])
        start = key.end()
        if tail[start:start + len(raw)] != raw:
            return tail  # a repeated `meta` key: which one a client reads is not ours to guess
        rewritten = _rewrite_meta(raw, upstream, public)
        return tail if rewritten is raw else tail[:start] + rewritten + tail[start + len(raw):]
    return tail


def _escaped(buf: bytes, quote: int) -> bool:
    run = 0
    while quote - run - 1 >= 0 and buf[quote - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _rewrite_meta(raw: bytes, upstream: URL, public: URL) -> bytes:
    try:
        meta = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    paging = meta.get("paging") if isinstance(meta, dict) else None
    if not isinstance(paging, dict):
        return raw
    changed = False
    for name in ("next", "previous"):
        link = paging.get(name)
        if isinstance(link, str):
            moved = rewrite_location(link, upstream, public)
            if moved != link:
                paging[name] = moved
                changed = True
    return orjson.dumps(meta) if changed else raw


def rewrite_paging_links(body: bytes, upstream: URL, public: URL) -> bytes:
    """The same, over a whole body."""
    return rewrite_tail(body, upstream, public) if len(body) <= TAIL_BYTES else (
        body[:-TAIL_BYTES] + rewrite_tail(body[-TAIL_BYTES:], upstream, public))
