"""Log lines: an internal error says what raised and where, never its message (it may hold a value)."""

from __future__ import annotations

import io

import orjson

from proxy.log import make_logger


def test_an_exception_line_names_the_class_and_frames_but_not_the_message() -> None:
    out = io.StringIO()
    log = make_logger(out)

    def lookup() -> None:
        {"a": 1}["Hidden Contact Name"]  # raises, as a bug on a record would

    try:
        lookup()
    except KeyError:
        log.exception("internal_error", request_id="r1")
    line = orjson.loads(out.getvalue())
    assert line["event"] == "internal_error" and line["request_id"] == "r1"
    assert line["exception"].startswith("KeyError at test_log.py:")
    assert "Hidden Contact Name" not in out.getvalue()
