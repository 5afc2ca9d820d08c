"""Fault injection: rules (first match wins, optionally counted down) and the misbehaviours they cause.

Kinds that answer before the handler runs: delay, hang, status500, status, malformed, drop, redirect.
Kinds that reshape the real answer: truncate, close_chunked, gzip_unrequested, html, wrong_content_type.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .errors import error_body, error_response

BEFORE_KINDS = frozenset({"delay", "hang", "status500", "status", "malformed", "drop", "redirect"})
AFTER_KINDS = frozenset({"truncate", "close_chunked", "gzip_unrequested", "html", "wrong_content_type"})
KINDS = BEFORE_KINDS | AFTER_KINDS
MALFORMED_BODY = b'{"data": [{"id": 1,'


@dataclass(frozen=True)
class Fault:
    kind: str
    path_prefix: str = ""
    method: str | None = None
    times: int | None = None
    arg: float | int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(sorted(KINDS))})")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or None for ever)")

    @classmethod
    def from_dict(cls, raw: Any) -> Fault:
        if not isinstance(raw, dict) or not set(raw) <= {"kind", "path_prefix", "method", "times", "arg"}:
            raise ValueError(f"a fault is an object with kind, path_prefix, method, times, arg: {raw!r}")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The current rules; `take` returns the first rule matching a request and counts it down."""

    def __init__(self, rules: Iterable[Fault] = ()) -> None:
        self._rules: list[tuple[Fault, int | None]] = [(rule, rule.times) for rule in rules]

    @property
    def rules(self) -> list[Fault]:
        return [rule for rule, _ in self._rules]

    def add(self, fault: Fault) -> None:
        self._rules.append((fault, fault.times))

    def replace(self, rules: Iterable[Fault]) -> None:
        self._rules = [(rule, rule.times) for rule in rules]

    def clear(self) -> None:
        self._rules = []

    def take(self, method: str, path: str) -> Fault | None:
        for index, (rule, left) in enumerate(self._rules):
            if not path.startswith(rule.path_prefix):
                continue
            if rule.method is not None and rule.method.upper() != method.upper():
                continue
            if left is not None:
                if left <= 1:
                    del self._rules[index]
                else:
                    self._rules[index] = (rule, left - 1)
            return rule
        return None


def _close(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


async def answer_before(request: web.Request, fault: Fault, released: asyncio.Event) -> web.StreamResponse | None:
    """The answer a before-kind fault gives instead of the handler (None: go on to the handler)."""
    if fault.kind == "delay":
        await asyncio.sleep(float(fault.arg))
        return None
    if fault.kind == "hang":
        # Never answer: wait until the client gives up or the app shuts down, then drop the connection.
        while not released.is_set() and request.transport is not None and not request.transport.is_closing():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), 0.05)
        _close(request)
        return web.Response(status=503)
    if fault.kind == "status500":
        return error_response(500, "InternalServerError", "Injected fault: internal server error")
    if fault.kind == "status":
        status = int(fault.arg) or 500
        return web.Response(status=status, body=error_body("InjectedFault", f"Injected status {status}"),
                            content_type="application/json", charset="utf-8")
    if fault.kind == "malformed":
        return web.Response(body=MALFORMED_BODY, content_type="application/json", charset="utf-8")
    if fault.kind == "drop":
        await request.read()
        _close(request)
        return web.Response(status=503)
    if fault.kind == "redirect":
        raise web.HTTPFound(f"{request.scheme}://{request.host}/api/v4/elsewhere")
    raise AssertionError(fault.kind)


def reshape(response: web.Response, fault: Fault) -> web.Response:
    """The after-kinds that only change the response's bytes or headers."""
    body = bytes(response.body) if isinstance(response.body, (bytes, bytearray)) else b""
    if fault.kind == "gzip_unrequested" and "Content-Encoding" not in response.headers:
        response.body = gzip.compress(body)
        response.headers["Content-Encoding"] = "gzip"
    elif fault.kind == "html":
        text = body.decode("utf-8", "replace")  # left unescaped, as a careless legacy error page would
        page = f"<html><head><title>Error</title></head><body><pre>{text}</pre></body></html>"
        return web.Response(status=200, text=page, content_type="text/html")
    elif fault.kind == "wrong_content_type":
        response.content_type = "text/plain"
    return response


async def send_broken(request: web.Request, response: web.Response, fault: Fault) -> web.StreamResponse:
    """truncate: full Content-Length, half the body. close_chunked: chunked, part, no last chunk."""
    body = bytes(response.body) if isinstance(response.body, (bytes, bytearray)) else b""
    broken = web.StreamResponse(status=response.status, headers=response.headers)
    if fault.kind == "truncate":
        broken.content_length = len(body)
    else:
        broken.headers.popall("Content-Length", None)
        broken.enable_chunked_encoding()
    await broken.prepare(request)
    await broken.write(body[: max(1, len(body) // 2)])
    _close(request)
    return broken
