#!/usr/bin/env python3
"""atheris target: arbitrary bytes as an upstream index body through the policed-index pipeline.

bytes -> proxy.jsonstream.IndexSplitter (fed in chunks) -> proxy.transform.transform_element with the
plan of GET /communications for a restricted viewer (enforce); and the same bytes through both index
paths of the body contract: proxy.body.index_whole (a body with a small Content-Length, read whole)
and proxy.body.IndexStream (streamed), in enforce and dry-run.

Oracle:
- only documented errors escape: ProxyError subclasses (UndecidableError is one) and EnvelopeError;
- when an element comes out, every Person/Company sender or receiver the viewer may not see is exactly
  the redacted stub, and no string that only a hidden contact held (its name, e-mail...: the canaries)
  appears anywhere in the output bytes;
- the buffered and the streamed paths give the same records and meta, or both refuse.

Run: .venv/bin/python fuzz/fuzz_pipeline.py -atheris_runs=20000 OUTDIR fuzz/corpus/pipeline
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["proxy"]):
    import orjson

    from proxy.body import NO_META, IndexStream, Judging, index_whole
    from proxy.decide import Decision, make_plan
    from proxy.errors import ProxyError
    from proxy.facts.settings import Settings
    from proxy.facts.viewer import Viewer
    from proxy.jsonstream import Element, EnvelopeError, IndexSplitter
    from proxy.policy.fields import parse_fields
    from proxy.policy.load import load_policies
    from proxy.transform import transform_element
    from tests.conftest import ALL, RESTRICTED  # the same settings the tests use

REPO = Path(__file__).resolve().parents[1]
VISIBLE = frozenset(range(100, 120))  # contacts 100..119 are visible; anything else is hidden
RESPONSIBLE = frozenset({500})
CONTACT_TYPES = ("Person", "Company")
FIELDS = (
    "id,subject,senders{id,type,name,identifier},receivers{id,type,name,identifier},"
    "time_entries{id,type,quantity,price,total,user,matter}"
)

POLICIES = load_policies(REPO / "policies")
ROUTE = next(r for r in POLICIES.routes if r.template == "/communications")
SETTINGS = Settings(ALL, {}, {2: RESTRICTED}, "fuzz")
VIEWER = Viewer(2, ("Attorney",), SETTINGS.for_caller(2, ("Attorney",)), VISIBLE, RESPONSIBLE)
PLAN = make_plan(ROUTE, VIEWER.settings, parse_fields(FIELDS), index=True)
BOUND = PLAN.bind(VIEWER)


def _is_hidden(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("type") not in CONTACT_TYPES:
        return False
    ident = entry.get("id")
    return not (isinstance(ident, int) and not isinstance(ident, bool) and ident in VISIBLE)


def _strings(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            _strings(v, out)


def _split(record: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(strings only hidden contacts hold, strings anywhere else in the record)."""
    hidden: set[str] = set()
    others: set[str] = set()
    for key, value in record.items():
        others.add(key)
        if key in ("senders", "receivers") and isinstance(value, list):
            for entry in value:
                (_strings(entry, hidden) if _is_hidden(entry) else _strings(entry, others))
        else:
            _strings(value, others)
    return hidden - others - {"****", *CONTACT_TYPES, "id", "name", "type", "redacted", "identifier"}, others


def check_element(raw: bytes, out: bytes) -> None:
    record = orjson.loads(raw)  # transform_element parsed it already, so this cannot fail
    produced = orjson.loads(out)
    assert isinstance(record, dict) and isinstance(produced, dict)
    for key in ("senders", "receivers"):
        before, after = record.get(key), produced.get(key)
        if not isinstance(before, list):
            continue
        assert isinstance(after, list) and len(after) == len(before), (key, before, after)
        for b, a in zip(before, after, strict=True):
            if _is_hidden(b):
                allowed = {"id", "name", "type", "redacted"}
                assert isinstance(a, dict) and set(a) <= allowed and a.get("redacted") is True, (b, a)
                assert a.get("name", "****") == "****" and a.get("id") == b.get("id"), (b, a)
    only_hidden, _ = _split(record)
    for canary in only_hidden:
        if canary:
            token = orjson.dumps(canary)
            assert token not in out, f"hidden string {canary!r} leaked: {out[:300]!r}"


def _ignore(_: list[Decision]) -> None:
    pass


def _whole(data: bytes, enforce: bool) -> Any:
    try:
        index = index_whole(data, Judging(BOUND, enforce, _ignore))
    except ProxyError:
        return None
    return index.data, None if index.meta is NO_META else index.meta


def _streamed(data: bytes, chunk: int, enforce: bool) -> Any:
    stream = IndexStream(Judging(BOUND, enforce, _ignore), max_element=1 << 20)
    try:
        out = []
        for start in range(0, len(data), chunk):
            out += stream.feed(data[start : start + chunk])
        out += stream.finish()
    except ProxyError:
        return None
    return b"[" + b",".join(out) + b"]", None if stream.meta is NO_META else stream.meta


def TestOneInput(data: bytes) -> None:
    chunk = 1 + len(data) % 61
    for enforce in (True, False):
        whole = _whole(data, enforce)
        assert whole == _streamed(data, chunk, enforce), (data[:300], enforce, whole)
    splitter = IndexSplitter(max_element_bytes=1 << 16, max_member_bytes=1 << 16)
    try:
        pieces = []
        for start in range(0, len(data), chunk):
            pieces.extend(splitter.feed(data[start : start + chunk]))
        pieces.extend(splitter.finish())
        for index, piece in enumerate(pieces):
            if not isinstance(piece, Element):
                continue
            out, _ = transform_element(piece.raw, f"data[{index}]", BOUND, enforce=True)
            if out is not None:
                check_element(piece.raw, out)
    except (ProxyError, EnvelopeError):
        return


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
