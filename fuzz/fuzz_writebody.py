#!/usr/bin/env python3
"""atheris target: the write-body checker (proxy.writebody.parse_body + encode_body).

Oracle: parse_body either raises a ProxyError, or gives a value whose canonical encoding either raises
a ProxyError (a lone surrogate) or passes the checker again and parses back to an equal JSON value of
the same kinds (what the backend gets means exactly what was checked). Numbers compare by value: JSON
has one number kind, so 1e0 forwarded as 1 is the same number.

Run: .venv/bin/python fuzz/fuzz_writebody.py -atheris_runs=20000 OUTDIR fuzz/corpus/writebody
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["proxy"]):
    from proxy.errors import ProxyError
    from proxy.writebody import encode_body, parse_body


def kind(value: Any) -> str:
    """JSON's kinds: a number is a number whatever its spelling (1e0 is 1, RFC 8259 §6)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, Decimal)):
        return "number"
    return type(value).__name__


def same(a: Any, b: Any) -> bool:
    """Equal JSON values of equal kinds (True == 1 in Python, not in JSON)."""
    if kind(a) != kind(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def TestOneInput(data: bytes) -> None:
    try:
        value = parse_body(data)
    except ProxyError:
        return
    try:
        encoded = encode_body(value)
    except ProxyError:
        return
    again = parse_body(encoded)  # the canonical form must itself pass the checker
    assert same(value, again), (data[:200], encoded[:200])
    # Spelling may settle once more (-0E0 -> -0 -> 0), meaning may not.
    assert same(again, parse_body(encode_body(again))), (data[:200], encoded[:200])


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
