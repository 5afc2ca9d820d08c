"""structlog set-up: JSON lines on a stream, one canonical line per request, decision lines.

No global configuration: each app wraps its own logger, so tests capture their own lines. Only
allowlisted keys reach the output (a scrub processor), so a token, a cookie or a body cannot.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

LEVELS = {"debug": 10, "info": 20, "warning": 30}
ALLOWED_KEYS = frozenset({
    "event", "exception", "level", "timestamp", "request_id", "method", "route", "status", "upstream_status",
    "duration_ms", "mode", "decisions", "rule", "action", "path", "object_id", "error", "outcome",
    "policy_version", "listen", "admin_listen", "upstream", "problems", "fact", "reason", "files",
    "blocked", "undecidable",
    "user_id", "decided",
    # operability (issue 12): what is loaded, who asked, what it cost, how a reload or drain went
    "settings_version", "client", "bytes_in", "bytes_out", "trigger", "in_flight",
    # the candidate set (issue 11, --shadow-policies): where it differs, as (route, rule, kind, count, paths)
    "differences", "shadow_policy_version", "shadow_settings_version",
    # serve --workers N (proxy/workers.py): which worker wrote a line, how one ended, how many run
    "worker", "pid", "exit_status", "workers", "restarts",
    # which path decides policed index records (issue 14: the compiled scanner or the pure path)
    "scanner",
})


def _exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """`log.exception(...)`: the exception's class and where it was raised, frames as file:line, never
    its message or any local (either could hold a hidden value): enough to find a 500's cause."""
    info = event.pop("exc_info", None)
    if info is True:
        info = sys.exc_info()
    if isinstance(info, BaseException):
        info = (type(info), info, info.__traceback__)
    if isinstance(info, tuple) and len(info) == 3 and info[0] is not None:
        frames = traceback.extract_tb(info[2])[-8:]
        where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(frames))
        event["exception"] = f"{info[0].__name__} at {where}" if where else info[0].__name__
    return event


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Drop any key not on the allowlist: what is logged is chosen, never whatever was at hand."""
    return {k: v for k, v in event.items() if k in ALLOWED_KEYS}


class _LineLogger:
    """One write per line. structlog's PrintLogger prints a line and its newline as two writes: the
    workers of `serve --workers N` share standard output, and two lines written at once came out as
    `{...}{...}` and two newlines, unreadable by any log shipper."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


def make_logger(stream: TextIO | None = None, level: str = "info") -> Any:
    out = stream if stream is not None else sys.stdout
    return structlog.wrap_logger(
        _LineLogger(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception,
            _scrub,
            structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        cache_logger_on_first_use=True,
    )


class VersionedLogger:
    """The app's logger, every line naming the policy and settings versions loaded when it was written.

    A reload rebinds it (`bind_versions`); a request's own line passes the versions it was decided
    under, which win over the bound ones.
    """

    def __init__(self, logger: Any) -> None:
        self._base = logger
        self._bound = logger

    def bind_versions(self, policy_version: str, settings_version: str) -> None:
        self._bound = self._base.bind(policy_version=policy_version, settings_version=settings_version)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bound, name)
