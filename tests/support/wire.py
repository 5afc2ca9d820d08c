"""Wire-level helpers for the hardening suite: a raw client that reads every response of a
pipelined exchange, a raw backend that answers the facts queries itself, and the proxy as a
subprocess with a chosen environment (for the parser matrix)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.support.process import ProxyProcess, spawn_proxy
from tests.support.raw import read_request
from tests.support.raw import response as http_response

# --- raw client ----------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: bytes
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool  # the framing said where the body ends and all of it arrived

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Exchange:
    """Everything the proxy sent back on one connection, and whether it closed it."""

    raw: bytes
    responses: list[RawResponse]
    closed: bool  # EOF or reset seen before the read deadline

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    @property
    def first(self) -> int | None:
        """The first final status, or None if nothing (parsable) came back."""
        finals = [r.status for r in self.responses if r.status >= 200]
        return finals[0] if finals else None


def parse_responses(data: bytes, head_requests: frozenset[int] = frozenset()) -> list[RawResponse]:
    """Split a byte stream into HTTP/1.1 responses (Content-Length, chunked, or to the end).

    head_requests: indexes (among final responses) answering HEAD, which carry no body.
    """
    out: list[RawResponse] = []
    pos = 0
    finals = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            break
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
        pos = end + 4
        lower = {k.lower(): v for k, v in headers}
        if status < 200 or status in (204, 304) or (status >= 200 and finals in head_requests):
            out.append(RawResponse(status, parts[2] if len(parts) > 2 else b"", headers, b"", True))
            finals += status >= 200
            continue
        finals += 1
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = bytearray()
            complete = False
            while True:
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    break
                try:
                    size = int(data[pos:line_end].split(b";")[0], 16)
                except ValueError:
                    break
                pos = line_end + 2
                if size == 0:
                    trailer_end = data.find(b"\r\n", pos)
                    if trailer_end >= 0:
                        pos = trailer_end + 2
                        complete = True
                    break
                if pos + size + 2 > len(data):
                    body += data[pos:]
                    pos = len(data)
                    break
                body += data[pos : pos + size]
                pos += size + 2
            out.append(RawResponse(status, parts[2] if len(parts) > 2 else b"", headers, bytes(body), complete))
        elif "content-length" in lower:
            length = int(lower["content-length"])
            payload = data[pos : pos + length]
            reason = parts[2] if len(parts) > 2 else b""
            out.append(RawResponse(status, reason, headers, payload, len(payload) == length))
            pos += length
        else:
            out.append(RawResponse(status, parts[2] if len(parts) > 2 else b"", headers, data[pos:], False))
            pos = len(data)
    return out


async def exchange(
    host: str,
    port: int,
    data: bytes | list[bytes],
    *,
    timeout: float = 5.0,
    pause: float = 0.0,
    idle: float | None = None,
    head_requests: frozenset[int] = frozenset(),
    responses: int | None = None,
) -> Exchange:
    """Send exact bytes (a list is sent piece by piece, `pause` apart), then read until the proxy
    closes, or `responses` complete final responses are in, or `idle` seconds pass without a byte,
    or `timeout` runs out."""
    reader, writer = await asyncio.open_connection(host, port)
    received = bytearray()
    closed = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        pieces = [data] if isinstance(data, bytes) else data
        for i, piece in enumerate(pieces):
            if i and pause:
                await asyncio.sleep(pause)
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                closed = True
                break
        while not closed:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), min(left, idle) if idle else left)
            except TimeoutError:
                break
            except ConnectionError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if responses is not None:
                done = [r for r in parse_responses(bytes(received), head_requests) if r.status >= 200 and r.complete]
                if len(done) >= responses:
                    break
    finally:
        writer.close()
    return Exchange(bytes(received), parse_responses(bytes(received), head_requests), closed)


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | dict[str, str] = (),  # type: ignore[assignment]
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    content_length: bool = True,
) -> bytes:
    """Exact request bytes; Content-Length is added for a body unless told not to."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if body and content_length and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in items):
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def rst_close(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0): the abrupt way clients vanish."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- raw backend that answers facts itself -------------------------------------------------------

RawAnswer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""Given a non-facts request (head+body), write an answer; return False to close the connection."""


def _index_body(records: list[object]) -> bytes:
    return orjson.dumps({"data": records, "meta": {"paging": {}, "records": len(records)}})


def _json(body: bytes) -> bytes:
    return http_response("200 OK", body, {"Content-Type": "application/json"})


def facts_answer(head: bytes, matters: list[dict[str, object]] | None = None) -> bytes | None:
    """The answer to one of the proxy's facts queries (None: not a facts query). Caller = token's N."""
    from tests.support.scripted import is_facts_query

    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    target = line.split(" ")[1] if line.count(" ") >= 2 else ""
    if not is_facts_query(target):
        return None
    user = 0
    for h in head.split(b"\r\n")[1:]:
        if h.lower().startswith(b"authorization:"):
            token = h.split(b":", 1)[1].strip().decode("latin-1")
            user = int(token.rsplit("-", 1)[1]) if token.rsplit("-", 1)[-1].isdigit() else 0
    if user == 0:
        return http_response(
            "401 Unauthorized",
            b'{"error":{"type":"Unauthorized","message":"no"}}',
            {"Content-Type": "application/json"},
        )
    if "who_am_i" in target:
        return _json(orjson.dumps({"data": {"id": user, "name": "U", "email": "u@x", "roles": []}}))
    if target.startswith("/api/v4/matters.json"):
        return _json(_index_body(list(matters or [])))
    return _json(_index_body([]))


@dataclass
class RawApi:
    """A keep-alive raw backend: facts answered itself, every other request to `answer`."""

    server: asyncio.Server
    forwarded: list[bytes] = field(default_factory=list)
    connections: int = 0

    @property
    def origin(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_raw_api(answer: RawAnswer, matters: list[dict[str, object]] | None = None) -> RawApi:
    api: RawApi

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        api.connections += 1
        try:
            while True:
                raw = await read_request(reader)
                facts = facts_answer(raw, matters)
                if facts is not None:
                    writer.write(facts)
                    await writer.drain()
                    continue
                api.forwarded.append(raw)
                if not await answer(raw, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    api = RawApi(server)
    return api


# --- the proxy as a subprocess, with its own environment ----------------------------------------


async def spawn_proxy_env(
    upstream: str,
    settings: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> ProxyProcess:
    """Like tests.support.process.spawn_proxy, with extra environment (e.g. AIOHTTP_NO_EXTENSIONS)."""
    return await spawn_proxy(upstream, settings, *extra, log=log, env=env)


def rss_mb(pid: int, key: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key}")
