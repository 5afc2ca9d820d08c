"""Bodies of policed responses: single objects buffered (bounded), indexes streamed record by record.

Every body is parsed in full; nothing the backend sent reaches the client unexamined. Records are
re-encoded after their decisions, except where the caller's plan has nothing to decide or strip:
then they go out as the backend's bytes (`proxy.envelope`). Once a streamed body has started, a
failure aborts the connection: the client sees a cut-off transfer, never a well-formed document
that is missing its end.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from aiohttp import web
from isal import isal_zlib
from multidict import CIMultiDict

from ..envelope import join_index, split_index
from ..errors import BadGatewayError, ProxyError, UndecidableError
from ..jsonkeys import refuse_repeated_keys
from ..jsonstream import Element, EnvelopeError, IndexSplitter, Member
from ..transform import transform_element, transform_record
from .exchange import Exchange
from .headers import mark_private
from .links import rewrite_link
from .upstream import UpstreamResponse

FLUSH_AT = 64 * 1024
BUFFER_INDEX_BELOW = 1024 * 1024
"""An index body this small is parsed whole (one loads, one dumps: twice as fast as record by record);
larger ones, and those of unknown length, stream."""
GZIP_MIN = 1024


def accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def check_json_response(response: UpstreamResponse) -> None:
    """We asked for identity JSON; anything else cannot be examined exactly."""
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise BadGatewayError("the backend sent an encoding that was not asked for")
    media = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise BadGatewayError("the backend's answer is not JSON")


async def respond_show(x: Exchange, response: UpstreamResponse, headers: CIMultiDict[str]) -> web.Response:
    check_json_response(response)
    raw = await response.read(x.services.config.max_show_body, x.tap)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UndecidableError("the backend's answer is not valid JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"data"}:
        raise UndecidableError("the backend's answer is not {\"data\": {...}}")
    refuse_repeated_keys(raw, doc, "the backend's answer")
    if x.record_id is not None and x.method in ("GET", "PATCH"):
        # The answer about /contacts/5 must be contact 5: another record (a hidden one) is refused.
        data = doc["data"]
        if not isinstance(data, dict) or type(data.get("id")) is not int or data["id"] != x.record_id:
            # (Dry-run passes the backend's answer on as undecidable: the one fallback in policed.py.)
            raise UndecidableError("the backend answered with another record than the one asked for")
    backend_etag = _backend_etag(response, doc["data"])  # read before the record is redacted
    record, decisions = transform_record(doc["data"], "data", x.bound, enforce=x.services.enforce,
                                         seal=x.sealer.record_tag)
    x.note(decisions)
    if record is None:
        raise UndecidableError("a single object cannot be filtered")
    body = raw if not x.services.enforce and not x.plan.added else orjson.dumps({"data": record})
    return finish_buffered(x, response.status, headers, body, backend_etag)


def _backend_etag(response: UpstreamResponse, record: Any) -> str | None:
    """The backend's tag of the record: its ETag header, else the record's `etag` member."""
    etag = response.headers.get("ETag") or (record.get("etag") if isinstance(record, dict) else None)
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
    if accepts_gzip(x.request) and len(body) >= GZIP_MIN:
        compressor = isal_zlib.compressobj(x.services.config.gzip_level, isal_zlib.DEFLATED, 31)
        body = compressor.compress(body) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return web.Response(status=status, body=body, headers=headers)


def _tags(header: str) -> set[str]:
    return {t.strip() for t in header.split(",") if t.strip()}


class _Emitter:
    """Starts the client response at the first write; compresses and batches what it sends."""

    def __init__(self, x: Exchange, status: int, headers: CIMultiDict[str]) -> None:
        self._x = x
        self._gzip = None
        if accepts_gzip(x.request):
            self._gzip = isal_zlib.compressobj(x.services.config.gzip_level, isal_zlib.DEFLATED, 31)
            headers["Content-Encoding"] = "gzip"
        self._response = web.StreamResponse(status=status, headers=headers)
        self._pending: list[bytes] = []
        self._size = 0

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
        if data:
            await self._response.write(data)

    async def finish(self) -> web.StreamResponse:
        await self._flush()
        if self._gzip is not None:
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
    if response.content_length is not None and response.content_length <= BUFFER_INDEX_BELOW:
        return await _respond_index_buffered(x, response, headers)
    mark_private(headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    emitter = _Emitter(x, response.status, headers)
    try:
        await _stream_index(x, response, emitter)
        return await emitter.finish()
    except (ProxyError, ConnectionError) as exc:
        if not emitter.started:
            raise
        x.outcome.error = type(exc).__name__
        emitter.abort()
        return emitter.response


async def _respond_index_buffered(
    x: Exchange, response: UpstreamResponse, headers: CIMultiDict[str]
) -> web.Response:
    raw = await response.read(BUFFER_INDEX_BELOW, x.tap)
    if not x.plan.touches:
        records, meta = split_index(raw)  # nothing to decide or strip: the records' own bytes
        if meta is not msgspec.UNSET:
            meta = await _rewrite_meta(x, meta)
        payload = join_index(records, meta)
    else:
        payload = await _transform_index(x, raw)
    mark_private(headers)
    headers["Content-Type"] = "application/json; charset=utf-8"
    if accepts_gzip(x.request) and len(payload) >= GZIP_MIN:
        compressor = isal_zlib.compressobj(x.services.config.gzip_level, isal_zlib.DEFLATED, 31)
        payload = compressor.compress(payload) + compressor.flush()
        headers["Content-Encoding"] = "gzip"
    return web.Response(status=response.status, body=payload, headers=headers)


async def _transform_index(x: Exchange, raw: bytes) -> bytes:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UndecidableError("the backend's index body is malformed") from None
    refuse_repeated_keys(raw, doc, "the backend's index body")
    if not isinstance(doc, dict) or "data" not in doc or not set(doc) <= {"data", "meta"}:
        raise UndecidableError("the backend's index body is not {\"data\": [...], \"meta\": {...}}")
    records = doc["data"]
    if not isinstance(records, list):
        raise UndecidableError("the index data is not a list")
    enforce = x.services.enforce
    kept = []
    for i, record in enumerate(records):
        out, decisions = transform_record(record, f"data[{i}]", x.bound, enforce=enforce, seal=x.sealer.record_tag)
        if decisions:
            x.note(decisions)
        if out is not None:
            kept.append(out)
    body: dict[str, Any] = {"data": kept}
    if "meta" in doc:
        body["meta"] = await _rewrite_meta(x, doc["meta"])
    return orjson.dumps(body)


async def _stream_index(x: Exchange, response: UpstreamResponse, emitter: _Emitter) -> None:
    splitter = IndexSplitter(max_element_bytes=x.services.config.max_element)
    enforce = x.services.enforce
    bound = x.bound
    seal = x.sealer.record_tag
    index = sent = 0
    meta: list[Any] = []

    async def take(pieces: list[Element | Member]) -> None:
        nonlocal index, sent
        out: list[bytes] = []  # one write per chunk, not one per record
        for piece in pieces:
            if isinstance(piece, Element):
                raw, decisions = transform_element(piece.raw, f"data[{index}]", bound, enforce=enforce, seal=seal)
                index += 1
                if decisions:
                    x.note(decisions)
                if raw is not None:
                    out.append(raw)
            elif piece.key == "meta":
                try:
                    value = orjson.loads(piece.raw)
                except orjson.JSONDecodeError:
                    raise UndecidableError("the index meta is not valid JSON") from None
                refuse_repeated_keys(piece.raw, value, "the index meta")
                meta.append(value)
            else:
                raise UndecidableError("the index has an unexpected member")
        if out:
            await emitter.write((b"," if sent else b'{"data":[') + b",".join(out))
            sent += len(out)

    try:
        async for chunk in response.chunks(64 * 1024):
            if x.tap is not None:
                # Kept only until the client gets its first byte: after that, nothing can be passed on.
                if emitter.started:
                    x.tap = None
                else:
                    x.tap.append(chunk)
            await take(splitter.feed(chunk))
        await take(splitter.finish())
    except EnvelopeError:
        raise UndecidableError("the backend's index body is malformed") from None
    if sent == 0:
        await emitter.write(b'{"data":[')
    tail = b"]"
    if meta:
        tail += b',"meta":' + orjson.dumps(await _rewrite_meta(x, meta[0]))
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
    if "records" in meta and x.plan.filters and x.services.enforce:
        # Hidden contacts must not be counted: the count over every page, not this one's.
        assert x.viewer.visible_contacts is not None
        if x.count_target is None:
            meta["records"] = len(x.viewer.visible_contacts)
        else:
            meta["records"] = await x.services.facts.count(x.authorization, x.count_target,
                                                           x.viewer.visible_contacts)
    return meta
