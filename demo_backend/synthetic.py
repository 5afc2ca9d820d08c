"""Big bodies made on the fly in constant memory: `X-Demo-Synthetic-Records: N` index pages of
activities or contacts, and `/_demo/blob?bytes=N` octet streams (for benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
from aiohttp import web

from .activities import SYNTHETIC_ID_BASE, synthetic_time_entry
from .errors import argument_error
from .fields import FieldSpec, project
from .handlers import Call
from .model import Record
from .people import blank_contact
from .shapes import initials_of, stamp, user_ref

SYNTHETIC_HEADER = "X-Demo-Synthetic-Records"
CHUNK_SIZE = 64 * 1024
SYNTHETIC_RESOURCES = ("activities", "contacts")


def synthetic_count(call: Call) -> int | None:
    raw = call.request.headers.get(SYNTHETIC_HEADER)
    if raw is None or call.resource.name not in SYNTHETIC_RESOURCES:
        return None
    if not raw.strip().isdigit():
        raise argument_error(f"{SYNTHETIC_HEADER} must be a non-negative integer")
    return int(raw)


def _synthetic_contact(index: int, user: Record) -> Record:
    cid = SYNTHETIC_ID_BASE + index + 1
    contact = blank_contact(cid, stamp(index % (60 * 24 * 600)))
    name = f"Synthetic Person {index + 1}"
    contact.update(etag=f'"{cid:032x}"', name=name, first_name="Synthetic", last_name=f"Person {index + 1}",
                   initials=initials_of(name), primary_email_address=f"synthetic.{index + 1}@example.com",
                   creator=user_ref(user))
    return contact


def _records(call: Call, count: int) -> Iterator[Record]:
    users = list(call.firm.users.values())
    accessible = call.accessible
    matters = [m for m in call.firm.matters.values() if accessible is None or m["id"] in accessible]
    make: Callable[[int], Record]
    if call.resource.name == "activities":
        def make(i: int) -> Record:
            return synthetic_time_entry(i, users[i % len(users)], matters[i % len(matters)] if matters else None)
    else:
        def make(i: int) -> Record:
            return _synthetic_contact(i, users[i % len(users)])
    return (make(i) for i in range(count))


async def synthetic_index(call: Call, count: int) -> web.StreamResponse:
    """A chunked index body of `count` generated records; `meta` comes last, there is no paging."""
    spec: FieldSpec = call.spec()
    response = web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(call.request)
    buffer = bytearray(b'{"data":[')
    for index, record in enumerate(_records(call, count)):
        if index:
            buffer += b","
        buffer += orjson.dumps(project(record, spec))
        if len(buffer) >= CHUNK_SIZE:
            await response.write(bytes(buffer))
            buffer.clear()
    buffer += b'],"meta":{"paging":{},"records":' + str(count).encode() + b"}}"
    await response.write(bytes(buffer))
    await response.write_eof()
    return response


async def blob(request: web.Request) -> web.StreamResponse:
    """`bytes=N` bytes of application/octet-stream, streamed in 64 KB chunks with a Content-Length."""
    raw = request.query.get("bytes", "0")
    if not raw.isdigit():
        raise argument_error("bytes must be a non-negative integer")
    size = int(raw)
    response = web.StreamResponse(status=200)
    response.content_type = "application/octet-stream"
    response.content_length = size
    await response.prepare(request)
    chunk = bytes(range(256)) * (CHUNK_SIZE // 256)
    left = size
    while left > 0:
        piece = chunk if left >= CHUNK_SIZE else chunk[:left]
        await response.write(piece)
        left -= len(piece)
    await response.write_eof()
    return response
