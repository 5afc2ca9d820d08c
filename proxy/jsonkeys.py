"""One duplicate-key policy for every policed body the proxy parses: a repeated key is refused.

orjson (like most parsers) keeps the last of two equal keys silently, so a decision taken on the
parsed value could be taken on a different member than the one a client reading the bytes sees.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .errors import UndecidableError

# Every string token, left to right, and whether a colon follows it (then it is a key). Matching
# every string in turn means a match never starts inside a string: outside strings, a quote only
# ever opens one. Possessive quantifiers: one linear pass, no backtracking.
_STRINGS = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"[ \t\n\r]*+(:)?', re.DOTALL)


_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


def count_keys(raw: bytes) -> int:
    """The number of object keys written in valid JSON `raw`, repeats and escaped spellings included."""
    return _STRINGS.findall(raw).count(b":")


def refuse_repeated_keys(raw: bytes, value: Any, what: str) -> None:
    """Raise UndecidableError when `raw` (valid JSON that parsed to `value`) repeats a key in an object.

    Keys that differ only by escapes (`"\\u0069d"`, `"id"`) decode to the same key: repeats too.
    Exact: the keys written in the bytes are counted and compared with the keys of the parsed
    value (which holds each key once), counted in its orjson encoding. When the backend writes
    JSON as orjson does (compact, same escapes), the encoding equals the bytes and nothing needs
    counting; otherwise colons are counted, and only a body that writes a colon as `\\u003a`
    needs its string tokens counted one by one.
    """
    canonical = orjson.dumps(value)
    if canonical == raw:
        return
    if _ESCAPED_COLON.search(raw) is None:
        # Outside strings a colon only ever follows a key; inside them, with no colon written as an
        # escape, the bytes and the encoding hold the same colons, save those of a repeat (its key,
        # and the value the parser dropped). So equal colon counts mean no key repeats: one C pass.
        repeated = raw.count(b":") != canonical.count(b":")
    else:
        repeated = count_keys(raw) != count_keys(canonical)
    if repeated:
        raise UndecidableError(f"{what} repeats a key")
