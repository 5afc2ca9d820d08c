"""Every error answer the proxy builds itself, built here: the API's body, JSON, never cached shared."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict

from ..errors import ProxyError, error_body
from .headers import mark_private

JSON = "application/json; charset=utf-8"


def error_response(
    status: int, wire_type: str, message: str, headers: Mapping[str, str] | CIMultiDict[str] | None = None,
) -> web.Response:
    """{"error": {"type", "message"}} with `status`; `headers` (the backend's cleaned ones, a 405's
    Allow) are kept, marked private."""
    out: CIMultiDict[str] = CIMultiDict(headers or {})
    mark_private(out)
    out["Content-Type"] = JSON
    return web.Response(status=status, headers=out, body=error_body(wire_type, message))


def proxy_error_response(exc: ProxyError) -> web.Response:
    return error_response(exc.status, exc.wire_type, exc.message, exc.headers)


def internal_error_response() -> web.Response:
    """A bug: a generic body, never a traceback nor anything of the request."""
    return error_response(500, "InternalServerError", "the proxy failed")
