"""Bodies of policed responses: single objects buffered (bounded); indexes read whole up to 1 MiB
(sized, or chunked up to --buffer-chunked-index), larger ones streamed record by record.

Every body is parsed in full; nothing the backend sent reaches the client unexamined. What the
bytes may be and what goes out is the body contract (`proxy.body`, pure): the same on every path,
the backend's bytes passed wherever nothing can change them (`transform.unchanged`). This module
reads, writes, gzips (`gzipper`, the one encoder) and rewrites the meta. Once a streamed body has started, a
failure aborts the connection: the client sees a cut-off transfer, never a well-formed document
that is missing its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from isal import isal_zlib
from multidict import CIMultiDict

from ..body import NO_META, IndexStream, index_whole, show_body
from ..errors import BadGatewayError, ProxyError, UndecidableError
from .exchange import Exchange
from .headers import mark_private
from .links import rewrite_link
from .upstream import UpstreamResponse

FLUSH_AT = 64 * 1024
BUFFER_INDEX_BELOW = 1024 * 1024
"""An index body this small is parsed whole (one loads, one dumps: twice as fast as record by record);
larger ones stream, and so does one of unknown length past --buffer-chunked-index."""
GZIP_MIN = 1024


def accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def check_json_response(response: UpstreamResponse) -> None:
    """We asked for identity JSON; anything else cannot be examined exactly."""
    if response.encoding != "identity":
        raise BadGatewayError("the backend sent an encoding that was not asked for")
    if response.media_type != "application/json":
        raise BadGatewayError("the backend's answer is not JSON")


async def respond_show(x: Exchange, response: UpstreamResponse, headers: CIMultiDict[str]) -> web.Response:
    check_json_response(response)
    raw = await response.read(x.services.config.max_show_body, x.tap)
    record_id = x.record_id if x.method in ("GET", "PATCH") else None
    # (Dry-run passes an answer it cannot examine on as undecidable: the one fallback in policed.py.)
    shown = show_body(raw, x.judging(), record_id=record_id)
    return finish_buffered(x, response.status, headers, shown.body, _backend_etag(response, shown.backend_etag))


def _backend_etag(response: UpstreamResponse, record_etag: Any) -> str | None:
    """The backend's tag of the record: its ETag header, else the record's `etag` member."""
    etag = response.headers.get("ETag") or record_etag
    return etag if isinstance(etag, str) and etag else None


def finish_buffered(
    x: Exchange, status: int, headers: CIMultiDict[str], body: bytes, backend_etag: str | None = None
) -> web.Response:
    """Our own ETag (per caller and policy version), 304 on a match, gzip when accepted.

    The tag seals the backend's etag (so If-Match with it can be verified, `proxy.etag`) and
    digests the body we send (so If-None-Match is per representation); never the backend's."""
    mark_private(headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    etag = x.sealer.header_tag(backend_etag, body)
    headers["ETag"] = etag
    if status == 200 and etag in _tags(x.request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    return web.Response(status=status, body=gzip_whole(x, headers, body), headers=headers)


def gzipper(x: Exchange) -> Any:
    """The one gzip encoder of policed answers (isal, --gzip-level); None when the caller does not
    accept gzip."""
    if not accepts_gzip(x.request):
        return None
    return isal_zlib.compressobj(x.services.config.gzip_level, isal_zlib.DEFLATED, 31)


def gzip_whole(x: Exchange, headers: CIMultiDict[str], body: bytes) -> bytes:
    """A whole body gzipped when the caller accepts it and it is worth it (GZIP_MIN bytes and more)."""
    if len(body) < GZIP_MIN or (compressor := gzipper(x)) is None:
        return body
    headers["Content-Encoding"] = "gzip"
    return bytes(compressor.compress(body) + compressor.flush())


def _tags(header: str) -> set[str]:
    return {t.strip() for t in header.split(",") if t.strip()}


class _Emitter:
    """Starts the client response at the first write; compresses and batches what it sends."""

    def __init__(self, x: Exchange, status: int, headers: CIMultiDict[str]) -> None:
        self._x = x
        self._gzip = gzipper(x)
        if self._gzip is not None:
            headers["Content-Encoding"] = "gzip"
        self._response = web.StreamResponse(status=status, headers=headers)
        self._pending: list[bytes] = []
        self._size = 0
        # A HEAD is answered like the GET it was forwarded as, without its body: aiohttp frames no
        # body for HEAD, so bytes written would desynchronise the connection for the next request.
        self._head = x.request.method == "HEAD"

    @property
    def response(self) -> web.StreamResponse:
        return self._response

    @property
    def started(self) -> bool:
        return self._response.prepared

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            await self._flush()

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if self._gzip is not None:
            data = self._gzip.compress(data)
        if not self._response.prepared:
            await self._response.prepare(self._x.request)
        if data and not self._head:
            await self._response.write(data)

    async def finish(self) -> web.StreamResponse:
        await self._flush()
        if self._gzip is not None and not self._head:
            await self._response.write(self._gzip.flush())
        await self._response.write_eof()
        return self._response

    def abort(self) -> None:
        """Cut the connection: no final chunk, so the client cannot take the body for complete."""
        transport = self._x.request.transport
        if transport is not None:
            transport.abort()


async def respond_index(x: Exchange, response: UpstreamResponse, headers: CIMultiDict[str]) -> web.StreamResponse:
    check_json_response(response)
    chunks = response.chunks(64 * 1024)
    held: list[bytes] = []
    length = response.content_length
    whole = BUFFER_INDEX_BELOW if length is not None else x.services.config.buffer_chunked_index
    if (length is None or length <= BUFFER_INDEX_BELOW) and whole > 0:
        # Read whole up to the limit, whether the backend said its length or chunked it (real backends
        # often chunk, --buffer-chunked-index): past it, what was read streams first, the rest after.
        size = 0
        async for chunk in chunks:
            if x.tap is not None:
                x.tap.append(chunk)
            held.append(chunk)
            size += len(chunk)
            if size > whole:
                break
        else:
            return await _respond_index_buffered(x, response.status, headers, b"".join(held))
    mark_private(headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    emitter = _Emitter(x, response.status, headers)
    try:
        await _stream_index(x, held, chunks, emitter)
        return await emitter.finish()
    except (ProxyError, ConnectionError) as exc:
        if not emitter.started:
            raise
        x.outcome.error = type(exc).__name__
        emitter.abort()
        return emitter.response


async def _respond_index_buffered(x: Exchange, status: int, headers: CIMultiDict[str], raw: bytes) -> web.Response:
    index = index_whole(raw, x.judging())
    payload = b'{"data":' + index.data
    if index.meta is not NO_META:
        payload += b',"meta":' + orjson.dumps(await _rewrite_meta(x, index.meta))
    payload += b"}"
    mark_private(headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    return web.Response(status=status, body=gzip_whole(x, headers, payload), headers=headers)


async def _stream_index(x: Exchange, held: list[bytes], chunks: AsyncIterator[bytes], emitter: _Emitter) -> None:
    """`held`: what was read before the body proved too large to read whole (already tapped)."""
    stream = IndexStream(x.judging(), max_element=x.services.config.max_element)
    sent = 0

    async def send(out: list[bytes]) -> None:
        nonlocal sent
        if out:  # one write per chunk, not one per record
            await emitter.write((b"," if sent else b'{"data":[') + b",".join(out))
            sent += len(out)

    for chunk in held:
        await send(stream.feed(chunk))
    async for chunk in chunks:
        if x.tap is not None:
            # Kept only until the client gets its first byte: after that, nothing can be passed on.
            if emitter.started:
                x.tap = None
            else:
                x.tap.append(chunk)
        await send(stream.feed(chunk))
    await send(stream.finish())
    if sent == 0:
        await emitter.write(b'{"data":[')
    tail = b"]"
    if stream.meta is not NO_META:
        tail += b',"meta":' + orjson.dumps(await _rewrite_meta(x, stream.meta))
    await emitter.write(tail + b"}")


async def _rewrite_meta(x: Exchange, meta: Any) -> Any:
    """The meta the client gets: only what the proxy knows (paging links, records), rebuilt.

    Any other member (`facets` holding names, a newer backend's counts) is dropped, on every path:
    the proxy cannot tell what it reveals. Values of a known member that are not what it expects
    are refused.
    """
    if not isinstance(meta, dict):
        raise UndecidableError("the index meta is not an object")
    out: dict[str, Any] = {}
    paging = meta.get("paging")
    if isinstance(paging, dict):
        upstream = x.services.upstream.origin
        links: dict[str, Any] = {}
        for key in ("next", "previous"):
            link = paging.get(key)
            if isinstance(link, str):
                links[key] = rewrite_link(link, upstream, x.public, x.client_fields)
            elif link is not None:
                raise UndecidableError("a paging link is not a string")
            elif key in paging:
                links[key] = None
        out["paging"] = links
    elif paging is not None:
        raise UndecidableError("the index paging is not an object")
    elif "paging" in meta:
        out["paging"] = None
    if "records" in meta:
        records = meta["records"]
        if records is not None and type(records) is not int:
            raise UndecidableError("the index record count is not an integer")
        out["records"] = records
    meta = out
    if "records" in meta and x.plan.filters is not None and x.services.effects.apply:
        # Hidden records must not be counted: the count over every page, not this one's, of the
        # records the filter's rule leaves visible (the contacts filter's visible contacts).
        visible_of = x.plan.filters.definition.visible
        assert visible_of is not None  # the registry refuses a filter without it
        visible = visible_of(x.viewer)
        if x.count_target is None:
            meta["records"] = len(visible)
        else:
            meta["records"] = await x.services.facts.count(x.authorization, x.count_target, visible)
    return meta
