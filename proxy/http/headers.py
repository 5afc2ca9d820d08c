"""Header hygiene, both ways: hop-by-hop and framing headers are never copied; forwarding headers
are the proxy's own; policed responses keep only an allowlist of the backend's headers, so nothing
that describes the unredacted body (digests, counts, validators) survives.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import HttpVersion11, web
from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import BadRequestError

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authorization", "proxy-authenticate",
})
# Framing is recomputed by aiohttp for the bytes we actually send; Host is the backend's.
FRAMING = frozenset({"content-length", "host", "expect"})
# A client must not choose what the backend believes about the connection or the original URL.
SPOOFABLE = frozenset({
    "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
    "x-forwarded-prefix", "x-forwarded-uri", "x-real-ip", "x-original-url", "x-rewrite-url",
    "x-envoy-original-path", "x-client-ip", "true-client-ip",
})
METHOD_OVERRIDES = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
# On policed routes the proxy answers conditionals and ranges itself, over the body it produced.
POLICED_REQUEST_DROP = frozenset({
    "range", "if-range", "if-none-match", "if-modified-since", "accept-encoding",
})
POLICED_RESPONSE_PASS = frozenset({
    "x-api-version",                       # the API echoes the version it answered with
    "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",  # per token, not per body
    "retry-after",                         # with 429/503: when to come back
    "deprecation", "sunset",               # about the endpoint, not about this body
    "content-language",                    # the language the (redacted) body is still in
    "allow",                               # with a backend 405: the methods of the resource
    "www-authenticate",                    # with a backend 401: how to authenticate
})
"""The backend's response headers a policed answer may carry: an allowlist, since a policed body is
the proxy's own and any other header may describe the body the backend sent (a `Content-Digest`,
`Repr-Digest` or `Content-MD5` of the hidden text lets a caller confirm guesses offline; `X-Total-Count`,
`X-Records`, `Content-Range` count records the caller must not see; `ETag`/`Last-Modified` identify the
unredacted version). Framing, type, encoding, caching and the proxy's own ETag are set for the body the
proxy sends (`mark_private`, `finish_buffered`); Location, Content-Location and Link are rewritten
onto the public origin (links.py). `Set-Cookie` is dropped too: the API authenticates with bearer
tokens, and a cookie is an opaque value the backend chose that the proxy cannot examine and that a
shared client would replay for whoever calls next. `Warning` (obsolete, free text) is dropped."""
SINGLETONS = ("authorization", "content-type", "x-api-version", "if-match", "host")
_ALIAS = re.compile(r"[_.]")
_VISIBLE = re.compile(rb"[!-~]+\Z")
_VALUE_BYTES = re.compile(rb"[\t -~]*\Z")
_REQUEST_ID = re.compile(r"[A-Za-z0-9\-]{1,64}\Z")


def _named_by_connection(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("Connection", []):
        named.update(t.strip().lower() for t in value.split(",") if t.strip())
    return named


def check_request_headers(headers: CIMultiDictProxy[str], raw: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Refuse what could be read two ways: method overrides, duplicated singletons, bytes outside
    visible ASCII (the two parsers aiohttp can run with read them differently)."""
    for raw_name, raw_value in raw:
        if not _VISIBLE.match(raw_name) or not _VALUE_BYTES.match(raw_value):
            raise BadRequestError("a header holds bytes outside visible ASCII")
    for name in headers:
        if name.lower() in METHOD_OVERRIDES or _ALIAS.sub("-", name.lower()) in METHOD_OVERRIDES:
            raise BadRequestError("method override headers are not accepted")
    for name in SINGLETONS:
        if len(headers.getall(name, [])) > 1:
            raise BadRequestError(f"{name} is repeated")


# A reg-name or IPv4 (letters, digits, `.`, `-`, `_`) or a bracketed IPv6 literal, then an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?\Z")


def check_host(request: web.Request) -> None:
    """A Host that is not `host[:port]` is 400 before anything else: links and Location headers are
    built from it, and a port of `abc`, user-info, spaces or a second authority are read one way by
    the proxy and another by whoever follows the link. HTTP/1.1 requires Host (RFC 9112 3.2);
    an HTTP/1.0 request may omit it, and then links use the listening address (links.py)."""
    host = request.headers.get("Host")
    if host is None:
        if request.version >= HttpVersion11:
            raise BadRequestError("an HTTP/1.1 request needs a Host header")
        return
    match = _HOST.match(host)
    if match is None or (match.group(1) is not None and not 1 <= int(match.group(1)) <= 65535):
        raise BadRequestError("the Host header is not a valid host[:port]")


def forwarded_for(client_values: list[str], peer: str, trusted_hops: int) -> str:
    """X-Forwarded-For as the backend gets it. With 0 trusted hops, the peer alone: whatever the client
    wrote is dropped. With N, the last N entries the client sent (written by the N trusted proxies in
    front of this one, each appending its own peer) are kept and the peer appended; entries left of
    them are the client's own claims and dropped (Envoy's xff_num_trusted_hops, nginx's set_real_ip_from)."""
    kept: list[str] = []
    if trusted_hops > 0:
        entries = [e.strip() for value in client_values for e in value.split(",") if e.strip()]
        kept = entries[-trusted_hops:]
    if peer:
        kept.append(peer)
    return ", ".join(kept)


def upstream_request_headers(
    request: web.Request, *, policed: bool, request_id: str, trusted_hops: int = 0
) -> CIMultiDict[str]:
    named = _named_by_connection(request.headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        alias = _ALIAS.sub("-", low)
        if low in HOP_BY_HOP or low in FRAMING or alias in SPOOFABLE or low in METHOD_OVERRIDES:
            continue
        if low in named and low not in ("authorization",):
            continue  # the client asked us to drop it: hop-by-hop by its Connection header
        if policed and low in POLICED_REQUEST_DROP:
            continue
        if low == "x-request-id":
            continue
        out.add(name, value)
    # The proxy's own forwarding headers, set after the client's copies were removed.
    forwarded = forwarded_for(request.headers.getall("X-Forwarded-For", []), request.remote or "", trusted_hops)
    if forwarded:
        out["X-Forwarded-For"] = forwarded
    out["X-Forwarded-Proto"] = request.scheme
    if "Host" in request.headers:  # without one, aiohttp's `request.host` is this machine's name
        out["X-Forwarded-Host"] = request.headers["Host"]
    out["X-Request-Id"] = request_id
    if policed:
        out["Accept-Encoding"] = "identity"  # we must read what we examine
    return out


def client_response_headers(upstream: CIMultiDictProxy[str], *, policed: bool) -> CIMultiDict[str]:
    named = _named_by_connection(upstream)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        low = name.lower()
        if low in HOP_BY_HOP or low in named or low in ("server", "via", "date"):
            continue
        if low in ("location", "content-location", "link"):
            continue  # rewritten onto the public origin by the caller (links.py)
        if policed and low not in POLICED_RESPONSE_PASS:
            continue  # it may describe the body the backend sent, not the one the proxy sends
        out.add(name, value)
    return out


def request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def mark_private(headers: CIMultiDict[str]) -> None:
    """A policed body is this caller's: no shared cache may keep it or give it to another."""
    headers["Cache-Control"] = "private"
    headers["Vary"] = "Authorization, Accept-Encoding"
