"""The one seam to the legacy backend: one client session per process, foreign errors translated once.

No proxied request is ever retried: aiohttp's client replays PUT and DELETE once after a dropped
connection unless its private `_retry_connection` is turned off (pinned aiohttp, regression test).
Redirects are relayed, never followed; bodies are never decompressed behind our back.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from ..errors import BadGatewayError, GatewayTimeoutError, ProxyError

MAX_FACTS_BODY = 64 * 1024 * 1024


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
        )
        self._session._retry_connection = False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @asynccontextmanager
    async def request(
        self, method: str, target: str, headers: CIMultiDict[str], body: Any = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
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
            yield response
        finally:
            response.release()

    async def get_json(self, target: str, authorization: str) -> tuple[int, Any]:
        """GET a JSON document with the caller's Authorization (for facts); identity encoding only."""
        headers = CIMultiDict({"Accept": "application/json", "Accept-Encoding": "identity"})
        if authorization:
            headers["Authorization"] = authorization
        async with self.request("GET", target, headers) as response:
            body = await read_limited(response, MAX_FACTS_BODY)
            if response.status != 200:
                return response.status, None
            if response.headers.get("Content-Encoding", "identity") != "identity":
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
    stream: aiohttp.StreamReader, cap: int, too_large: ProxyError, tap: list[bytes] | None = None
) -> bytes:
    """A whole body, or `too_large` as soon as it passes `cap` bytes (never buffered past the cap).

    `tap`, when given, also gets every chunk as it is read, so a caller that gives up on the body can
    still pass on the bytes it took (dry-run)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        if tap is not None:
            tap.append(chunk)
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def read_limited(response: aiohttp.ClientResponse, limit: int, tap: list[bytes] | None = None) -> bytes:
    """Read a whole body, refusing more than `limit` bytes and translating cut-offs to 502."""
    try:
        return await read_capped(response.content, limit,
                                 BadGatewayError("the backend's answer is too large to examine"), tap)
    except TimeoutError:
        raise GatewayTimeoutError("the backend stopped sending") from None
    except (aiohttp.ClientError, OSError):
        raise BadGatewayError("the backend's answer was cut off") from None
