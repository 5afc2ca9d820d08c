"""Links the backend writes (paging, Location) point at the backend; clients must get the proxy's.

Paging links carry the client's own `fields`, never the ones the proxy added for its decisions.
"""

from __future__ import annotations

import re

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import BadRequestError, UndecidableError


def public_origin(request: web.Request, configured: URL | None) -> URL:
    """`--public-origin` when set; else the client's Host (checked by `check_host`); else, for an
    HTTP/1.0 request without Host, the address the client connected to (aiohttp's own fallback,
    the machine's name without the port, is not an origin the client can reach)."""
    if configured is not None:
        return configured
    host = request.headers.get("Host")
    if host is not None:
        return URL.build(scheme=request.scheme, authority=host)
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    if not sockname:
        raise BadRequestError("the request has no Host and the listening address is unknown")
    address, port = sockname[0], sockname[1]
    return URL.build(scheme=request.scheme, host=address, port=port)


def rewrite_link(link: str, upstream: URL, public: URL, client_fields: str | None) -> str:
    """A paging link on the backend's origin, moved to the public origin with the client's fields.

    A paging link to any other origin is not ours to pass on: undecidable (fail closed).
    """
    try:
        url = URL(link, encoded=True)
    except ValueError:
        raise UndecidableError("a paging link is malformed") from None
    if not url.is_absolute() or url.origin() != upstream:
        raise UndecidableError("a paging link points outside the backend")
    query = [(k, v) for k, v in url.query.items() if k != "fields"]
    if client_fields is not None:
        query.insert(0, ("fields", client_fields))
    rebuilt = public.with_path(url.path).with_query(query)
    return str(rebuilt)


LINK_HEADERS = ("Location", "Content-Location", "Link")
_LINK_TARGET = re.compile(r"<([^>]*)>")


def copy_link_headers(
    upstream_headers: CIMultiDictProxy[str] | CIMultiDict[str], out: CIMultiDict[str], upstream: URL, public: URL,
    client_fields: str | None = None, *, policed: bool = False,
) -> None:
    """Location, Content-Location and Link (every Link line), with targets on the backend's origin moved
    to the public one. On a policed answer a Link target carries the client's own `fields`, never the
    ones the proxy added for its decisions, as paging links in the body do."""
    for name in LINK_HEADERS:
        values = upstream_headers.getall(name, [])
        for i, value in enumerate(values):
            if name == "Link":
                moved = _LINK_TARGET.sub(lambda m: f"<{_move(m.group(1), upstream, public, client_fields, policed)}>",
                                         value)
            else:
                moved = rewrite_location(value, upstream, public)
            if i == 0:
                out[name] = moved
            else:
                out.add(name, moved)


def _move(target: str, upstream: URL, public: URL, client_fields: str | None, policed: bool) -> str:
    moved = rewrite_location(target, upstream, public)
    if not policed or moved == target:
        return moved  # relayed, or not on the backend's origin: as it came
    return rewrite_link(target, upstream, public, client_fields)


def rewrite_location(location: str, upstream: URL, public: URL) -> str:
    """Location on the backend's origin moves to the public origin; other origins pass unchanged."""
    try:
        url = URL(location, encoded=True)
    except ValueError:
        return location
    if url.is_absolute() and url.origin() == upstream:
        moved = public.with_path(url.raw_path, encoded=True)
        if url.raw_query_string:
            # The query as the backend encoded it: with_query() would quote its `%7B` again (`%257B`).
            moved = URL(f"{moved}?{url.raw_query_string}", encoded=True)
        return str(moved)
    return location
