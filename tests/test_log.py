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


class _Writes(io.StringIO):
    """A stream that keeps each write call, as a file shared by several processes sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_line_is_one_write() -> None:
    """The workers of `serve --workers N` share standard output: a line and its newline written
    apart let two workers' lines run together (`{...}{...}`)."""
    out = _Writes()
    log = make_logger(out)
    log.info("listening", worker=0)
    log.warning("stopped", worker=1)
    assert len(out.calls) == 2
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in out.calls)
    assert [orjson.loads(call)["event"] for call in out.calls] == ["listening", "stopped"]
