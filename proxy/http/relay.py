"""The streamed relay for endpoints no policy covers: bodies of any size, both ways.

Only header hygiene applies (and the canonical target, so the backend sees what was matched). A JSON
answer's paging links are moved onto the proxy's origin as it streams (relay_links). With the
sentinel on, a restricted caller's JSON answer, up to --sentinel-max-body, is read whole and scanned
for contacts hidden from them (proxy/sentinel.py); everything else streams unparsed.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ..errors import (
    BadGatewayError,
    ClientGoneError,
    GatewayTimeoutError,
    ProxyError,
    UnauthorizedError,
    UnavailableError,
)
from ..facts.viewer import Viewer
from ..policy.canonical import CanonicalTarget, render_target
from ..rules.contacts import restricted
from ..sentinel import SentinelMode, route_template, scan
from .gaps import report_findings
from .headers import client_response_headers, mark_private, upstream_request_headers
from .links import copy_link_headers, public_origin
from .relay_links import PagingLinkRewriter, rewrite_paging_links
from .state import Loaded, Outcome, Services
from .upstream import UpstreamResponse

CHUNK = 256 * 1024
# Headers that describe the backend's exact bytes: a JSON answer's may change (links, stubs).
BODY_DIGESTS = ("ETag", "Content-MD5", "Digest", "Content-Digest", "Repr-Digest")
DECODABLE = frozenset({"identity", "gzip", "x-gzip", "deflate"})


async def relay(
    request: web.Request, services: Services, target: CanonicalTarget, outcome: Outcome,
    body: bytes | None = None, *, sentinel: Loaded | None = None,
) -> web.StreamResponse:
    """Relay one request; `sentinel` (the request's policy/settings pair) turns the sentinel on for it."""
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
        return await pass_on(request, services, response, outcome, target=target, sentinel=sentinel)


async def pass_on(
    request: web.Request, services: Services, response: UpstreamResponse, outcome: Outcome,
    head: bytes = b"", *, target: CanonicalTarget | None = None, sentinel: Loaded | None = None,
) -> web.StreamResponse:
    """The backend's answer as it came: its status, its headers cleaned as a relay cleans them, and its
    bytes (`head`, those already read from it, then the rest of the stream), with a JSON answer's
    paging links on the proxy's origin; with `sentinel` (and the target), scanned for hidden contacts."""
    out_headers = client_response_headers(response.headers, policed=False)
    out_headers["X-Request-Id"] = outcome.request_id
    public = public_origin(request, services.config.public_origin)
    copy_link_headers(response.headers, out_headers, services.upstream.origin, public)
    rewriter: PagingLinkRewriter | None = None
    if _json_2xx(request, response) and response.encoding == "identity":
        # Its paging links may be rewritten: the backend's length and digests would not hold.
        rewriter = PagingLinkRewriter(services.upstream.origin, public)
        for name in (*BODY_DIGESTS, "Content-Length"):  # sent chunked: the links may change its length
            out_headers.popall(name, None)
    elif "Content-Length" in response.headers:
        out_headers["Content-Length"] = response.headers["Content-Length"]
    held: list[bytes] = [head] if head else []
    if sentinel is not None and target is not None and not head and _json_2xx(request, response):
        viewer = await _restricted_viewer(request, services, sentinel)
        if viewer is not None:
            whole = await _read_to_scan(services, response, held)
            plain = _decoded(services, response, whole) if whole is not None else None
            if whole is not None and plain is None:
                held.append(whole)  # relayed as it came, unscanned (counted)
            elif whole is not None and plain is not None:
                body_out = _sentinel_scan(services, target, outcome, sentinel, viewer, plain, out_headers)
                if body_out is plain and plain is not whole:
                    out = whole  # a compressed answer nothing was found in goes out as it came
                else:
                    out = rewrite_paging_links(body_out, services.upstream.origin, public)
                    out_headers.popall("Content-Encoding", None)
                out_headers["Content-Length"] = str(len(out))
                return await _answer_whole(request, response.status, out_headers, out)
    client = web.StreamResponse(status=response.status, reason=None, headers=out_headers)
    await client.prepare(request)
    if request.method == "HEAD":
        await client.write_eof()
        return client
    try:
        for chunk in held:
            await _write(client, rewriter, chunk)
        async for chunk in response.chunks(CHUNK):
            await _write(client, rewriter, chunk)
        if rewriter is not None and (rest := rewriter.finish()):
            await client.write(rest)
    except (BadGatewayError, GatewayTimeoutError, ConnectionError) as exc:
        # Headers are gone already: cut the connection so the client sees an incomplete body.
        outcome.error = type(exc).__name__ if isinstance(exc, ProxyError) else ClientGoneError.__name__
        if request.transport is not None:
            request.transport.abort()
        return client
    await client.write_eof()
    return client

async def _write(client: web.StreamResponse, rewriter: PagingLinkRewriter | None, chunk: bytes) -> None:
    out = rewriter.feed(chunk) if rewriter is not None else chunk
    if out:
        await client.write(out)


def _json_2xx(request: web.Request, response: UpstreamResponse) -> bool:
    # Not a 206: a range of the body, whose Content-Range a rewritten link would no longer match.
    return request.method != "HEAD" and 200 <= response.status < 300 and response.status != 206 and (
        response.media_type == "application/json")


async def _restricted_viewer(request: web.Request, services: Services, loaded: Loaded) -> Viewer | None:
    """The caller, with their visible contacts, when their contacts are restricted; else None.

    No facts are asked when the settings restrict no one, nor for a request without credentials;
    an all-visible caller costs one who_am_i per facts TTL, never a crawl of the visible sets.
    """
    authorization = request.headers.get("Authorization", "")
    if not authorization or not services.ledger.may_restrict(loaded.settings):
        return None
    try:
        caller = await services.facts.caller(authorization, loaded.policies)
        if not restricted(loaded.settings.for_caller(caller.user_id, caller.roles)):
            return None  # all-visible: never scanned, no visible set fetched
        return await services.facts.viewer(authorization, loaded.policies, loaded.settings)
    except UnauthorizedError:
        # The backend served the answer but does not know the credentials as a user: no user's
        # restrictions apply to it. Counted, so the operator sees it.
        _unscanned(services, "unknown_caller")
        return None
    except UnavailableError:
        if services.config.sentinel is SentinelMode.REDACT and services.effects.fail_closed:
            raise  # whether the answer holds a hidden contact cannot be told: fail closed (503)
        _unscanned(services, "facts_unavailable")
        return None


async def _read_to_scan(services: Services, response: UpstreamResponse, held: list[bytes]) -> bytes | None:
    """The whole body when it can be scanned; None (the bytes read so far in `held`) when not."""
    if response.encoding not in DECODABLE:
        _unscanned(services, "encoded")
        return None
    if response.status == 206:
        _unscanned(services, "partial")
        return None
    limit = services.config.sentinel_max_body
    if (response.content_length or 0) > limit:
        _unscanned(services, "too_large")
        return None
    size = 0
    async for chunk in response.chunks(CHUNK):
        held.append(chunk)
        size += len(chunk)
        if size > limit:
            # Bounded: at most the limit plus a chunk is held; the rest streams unscanned.
            _unscanned(services, "too_large")
            return None
    whole = b"".join(held)
    held.clear()
    return whole


def _decoded(services: Services, response: UpstreamResponse, whole: bytes) -> bytes | None:
    """The body as JSON text: gzip and deflate undone within --sentinel-max-body (a small body
    cannot unpack past the limit); None when it cannot be (counted)."""
    if response.encoding == "identity":
        return whole
    limit = services.config.sentinel_max_body
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib framing, told apart by their headers
    try:
        plain = inflater.decompress(whole, limit + 1)
    except zlib.error:
        _unscanned(services, "malformed")
        return None
    if len(plain) > limit:
        _unscanned(services, "too_large")
        return None
    if not inflater.eof or inflater.unused_data:
        _unscanned(services, "malformed")
        return None
    return plain


def _sentinel_scan(
    services: Services, target: CanonicalTarget, outcome: Outcome, loaded: Loaded, viewer: Viewer,
    whole: bytes, headers: CIMultiDict[str],
) -> bytes:
    """Scan one answer; count and log what was found (each route and path logged once), and
    in redact mode (enforce only) answer with the hidden contacts stubbed."""
    try:
        doc = orjson.loads(whole)
    except orjson.JSONDecodeError:
        _unscanned(services, "malformed")
        return whole
    services.metrics.sentinel_scanned.inc()
    visible = viewer.visible_contacts
    assert visible is not None
    redact = services.config.sentinel is SentinelMode.REDACT and services.effects.apply
    doc, findings = scan(doc, lambda contact_id: contact_id not in visible, redact=redact)
    if not findings:
        return whole
    report_findings(services, route_template(target.match_segments, loaded.policies.base), findings, redact,
                    outcome)
    if not redact:
        return whole
    mark_private(headers)
    for name in (*BODY_DIGESTS, "Last-Modified"):
        headers.popall(name, None)  # they describe the backend's body, not this one
    return orjson.dumps(doc)


async def _answer_whole(
    request: web.Request, status: int, headers: CIMultiDict[str], body: bytes,
) -> web.StreamResponse:
    client = web.StreamResponse(status=status, reason=None, headers=headers)
    await client.prepare(request)
    await client.write(body)
    await client.write_eof()
    return client


def _unscanned(services: Services, reason: str) -> None:
    services.metrics.sentinel_unscanned.labels(reason).inc()


async def _stream_request(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk
