"""The one seam to the legacy backend: one client session per process, foreign errors translated once.

`Upstream.request()` yields an `UpstreamResponse`: the status, the headers, the announced length and
the body as chunks. Every aiohttp client error, OSError and timeout, while connecting, waiting for
the headers or reading the body, becomes the proxy's own error here (502 or 504) and nowhere else:
the shell above (policed, respond, relay, facts) imports no aiohttp client type.

No proxied request is ever retried: aiohttp's client replays an idempotent request (PUT, DELETE)
once after a kept-alive connection drops. A public client middleware (`_no_replay`) re-raises the
errors that trigger the replay as one aiohttp does not retry (regression test:
tests/test_relay.py::test_no_request_is_replayed_after_the_upstream_drops).
Redirects are relayed, never followed; bodies are never decompressed behind our back.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import BadGatewayError, GatewayTimeoutError, ProxyError

MAX_FACTS_BODY = 64 * 1024 * 1024


class _DroppedConnection(aiohttp.ClientConnectionError):
    """A kept-alive connection the backend dropped: not ClientOSError nor ServerDisconnectedError,
    the two errors on which aiohttp's session replays an idempotent request."""


async def _no_replay(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # never connected: nothing was sent (and aiohttp does not retry it either)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise _DroppedConnection(str(exc)) from exc


class UpstreamResponse:
    """The backend's answer as the shell sees it: status, headers, announced length, body chunks.

    Reading the body raises only the proxy's errors: GatewayTimeoutError when the backend stops
    sending (--upstream-idle-timeout), BadGatewayError when its answer is cut off or malformed."""

    __slots__ = ("_content", "content_length", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status: int = response.status
        self.headers: CIMultiDictProxy[str] = response.headers
        self.content_length: int | None = response.content_length
        self._content = response.content

    @property
    def encoding(self) -> str:
        """Its Content-Encoding, lower-cased (`identity` when none)."""
        return self.headers.get("Content-Encoding", "identity").strip().lower()

    @property
    def media_type(self) -> str:
        """Its Content-Type without parameters, lower-cased (`application/json`)."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()

    def chunks(self, size: int = 0) -> AsyncIterator[bytes]:
        """The body as it arrives: chunks of at most `size` bytes (0: whatever has arrived)."""
        return _Chunks(self._content, size)

    async def read(self, limit: int, tap: list[bytes] | None = None) -> bytes:
        """The whole body, refused (502) past `limit` bytes; see `read_capped` for `tap`."""
        return await read_capped(self.chunks(), limit,
                                 BadGatewayError("the backend's answer is too large to examine"), tap)


class _Chunks:
    """An async iterator over a body that maps foreign errors (a class, not an async generator: one
    left half-read needs no finalising)."""

    __slots__ = ("_content", "_size")

    def __init__(self, content: aiohttp.StreamReader, size: int) -> None:
        self._content = content
        self._size = size

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await (self._content.read(self._size) if self._size else self._content.readany())
        except TimeoutError:
            raise GatewayTimeoutError("the backend stopped sending") from None
        except (aiohttp.ClientError, OSError):
            raise BadGatewayError("the backend's answer was cut off") from None
        if not chunk:
            raise StopAsyncIteration
        return chunk


class Upstream:
    def __init__(
        self,
        origin: URL,
        *,
        connect_timeout: float,
        headers_timeout: float,
        idle_timeout: float,
        connections: int,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = origin
        self._tls = tls  # --upstream-ca / --upstream-cert; None: the system's CAs, verified
        self._headers_timeout = headers_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=idle_timeout
        )
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ttl_dns_cache=60,
                                         ssl=self._tls if self._tls is not None else True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # nothing of one caller is kept for another
            timeout=self._timeout,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            read_bufsize=1 << 19,
            middlewares=(_no_replay,),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @asynccontextmanager
    async def request(
        self, method: str, target: str, headers: CIMultiDict[str], body: Any = None
    ) -> AsyncIterator[UpstreamResponse]:
        """Send one request (target is the canonical, already encoded path and query)."""
        assert self._session is not None
        url = URL(str(self.origin) + target, encoded=True)
        try:
            async with asyncio.timeout(self._headers_timeout):
                response = await self._session.request(
                    method, url, headers=headers, data=body, allow_redirects=False,
                    compress=None, chunked=None,
                )
        except TimeoutError:
            raise GatewayTimeoutError("the backend did not answer in time") from None
        except aiohttp.ClientConnectorError:
            raise BadGatewayError("the backend cannot be reached") from None
        except (aiohttp.ClientError, OSError, ValueError):
            raise BadGatewayError("the backend's answer was malformed") from None
        try:
            yield UpstreamResponse(response)
        finally:
            response.release()

    async def get_json(self, target: str, authorization: str) -> tuple[int, Any]:
        """GET a JSON document with the caller's Authorization (for facts); identity encoding only."""
        headers = CIMultiDict({"Accept": "application/json", "Accept-Encoding": "identity"})
        if authorization:
            headers["Authorization"] = authorization
        async with self.request("GET", target, headers) as response:
            body = await response.read(MAX_FACTS_BODY)
            if response.status != 200:
                return response.status, None
            if response.encoding != "identity":
                raise BadGatewayError("the backend sent an encoding that was not asked for")
            try:
                return response.status, orjson.loads(body)
            except orjson.JSONDecodeError:
                raise BadGatewayError("the backend's answer is not JSON") from None

    def same_origin_target(self, url: str) -> str | None:
        """The path and query of a link on the backend's origin; None for any other origin."""
        try:
            parsed = URL(url, encoded=True)
        except ValueError:
            return None
        if not parsed.is_absolute() or parsed.origin() != self.origin:
            return None
        return parsed.raw_path_qs


async def read_capped(
    chunks: AsyncIterable[bytes], cap: int, too_large: ProxyError, tap: list[bytes] | None = None
) -> bytes:
    """A whole body, or `too_large` as soon as it passes `cap` bytes (never buffered past the cap).

    `tap`, when given, also gets every chunk as it is read, so a caller that gives up on the body can
    still pass on the bytes it took (dry-run)."""
    taken: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if tap is not None:
            tap.append(chunk)
        size += len(chunk)
        if size > cap:
            raise too_large
        taken.append(chunk)
    return b"".join(taken)
