"""The streamed relay for endpoints no policy covers: bodies of any size, both ways, never parsed.

Only header hygiene applies (and the canonical target, so the backend sees what was matched).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..errors import BadGatewayError, GatewayTimeoutError
from ..policy.canonical import CanonicalTarget, render_target
from .headers import client_response_headers, upstream_request_headers
from .links import copy_link_headers, public_origin
from .state import Outcome, Services

CHUNK = 256 * 1024


async def relay(
    request: web.Request, services: Services, target: CanonicalTarget, outcome: Outcome,
    body: bytes | None = None,
) -> web.StreamResponse:
    headers = upstream_request_headers(request, policed=False, request_id=outcome.request_id,
                                       trusted_hops=services.config.trusted_hops)
    payload: bytes | AsyncIterator[bytes] | None = body
    if body is None and request.body_exists:
        payload = _stream_request(request)
        if "Content-Length" in request.headers:
            headers["Content-Length"] = request.headers["Content-Length"]
    forward = render_target(target.segments, target.query)
    async with services.upstream.request(request.method, forward, headers, payload) as response:
        outcome.upstream_status = response.status
        return await pass_on(request, services, response, outcome)


async def pass_on(
    request: web.Request, services: Services, response: aiohttp.ClientResponse, outcome: Outcome,
    head: bytes = b"",
) -> web.StreamResponse:
    """The backend's answer as it came: its status, its headers cleaned as a relay cleans them, and its
    bytes (`head`, those already read from it, then the rest of the stream)."""
    out_headers = client_response_headers(response.headers, policed=False)
    out_headers["X-Request-Id"] = outcome.request_id
    copy_link_headers(response.headers, out_headers, services.upstream.origin,
                      public_origin(request, services.config.public_origin))
    if "Content-Length" in response.headers:
        out_headers["Content-Length"] = response.headers["Content-Length"]
    client = web.StreamResponse(status=response.status, reason=None, headers=out_headers)
    await client.prepare(request)
    if request.method == "HEAD":
        await client.write_eof()
        return client
    try:
        if head:
            await client.write(head)
        async for chunk in response.content.iter_chunked(CHUNK):
            await client.write(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        # Headers are gone already: cut the connection so the client sees an incomplete body.
        outcome.error = (GatewayTimeoutError if isinstance(exc, TimeoutError) else BadGatewayError).__name__
        if request.transport is not None:
            request.transport.abort()
        return client
    await client.write_eof()
    return client


async def _stream_request(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk
