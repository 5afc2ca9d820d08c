"""The Python peer: the same redaction work as the proxy does for token-2, as a mitmproxy addon.

`mitmdump -s bench/peers/mitm_addon.py` with bench/ on PYTHONPATH (bench/run.py does both). mitmproxy
lives in its own venv, not the project's, so the flow is typed by the few attributes used here.
"""

from __future__ import annotations

from typing import Protocol

from peers.redact import CALLER_AUTHORIZATION, redact


class _Headers(Protocol):
    def get(self, key: str, default: None = None, /) -> str | None: ...


class _Request(Protocol):
    headers: _Headers
    path: str


class _Response(Protocol):
    status_code: int
    content: bytes | None


class Flow(Protocol):
    """What this addon reads and writes of mitmproxy's `http.HTTPFlow`."""

    request: _Request
    response: _Response | None


def response(flow: Flow) -> None:
    """mitmproxy's response hook: redact the restricted caller's activities pages, pass everything else."""
    if flow.request.headers.get("authorization") != CALLER_AUTHORIZATION:
        return
    answer = flow.response
    if answer is None or not flow.request.path.startswith("/api/v4/activities") or answer.status_code != 200:
        return
    if answer.content is not None:
        answer.content = redact(answer.content)
