"""Cursor paging of index responses: `limit`, `order`, opaque `page_token`, full-URL paging links."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from .errors import argument_error
from .fields import FieldSpec, project
from .model import Record

DEFAULT_LIMIT = 200
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    limit: int
    descending: bool
    after: int | None  # the cursor: the last key of the previous page
    token_given: bool


def encode_token(key: int) -> str:
    return base64.urlsafe_b64encode(f"id:{key}".encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "id":
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise argument_error("Invalid page_token") from None


def parse_page_request(request: web.Request) -> PageRequest:
    raw_limit = request.query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise argument_error("limit must be an integer between 1 and 200") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise argument_error("limit must be an integer between 1 and 200")
    order = request.query.get("order", "id(asc)")
    if order not in ("id(asc)", "id(desc)", "id"):
        raise argument_error(f"Unsupported order {order!r}: use id(asc) or id(desc)")
    token = request.query.get("page_token")
    after = None if token is None or token == "" else decode_token(token)
    return PageRequest(limit=limit, descending=order == "id(desc)", after=after, token_given=after is not None)


def page_url(request: web.Request, token: str | None) -> str:
    """This request's URL on the backend's own origin, with `page_token` replaced (or dropped)."""
    query: MultiDict[str] = MultiDict((k, v) for k, v in request.query.items() if k != "page_token")
    if token is not None:
        query.add("page_token", token)
    origin = URL.build(scheme=request.scheme, authority=request.host)
    return str(origin.with_path(request.path).with_query(query))


def index_payload(
    request: web.Request, entries: Iterable[tuple[int, Record]], spec: FieldSpec, page: PageRequest
) -> dict[str, object]:
    """The `{"data": [...], "meta": {"paging": ..., "records": N}}` envelope of one page."""
    ordered = sorted(entries, key=lambda entry: entry[0], reverse=page.descending)
    start = 0
    after = page.after
    if after is not None:
        start = next(
            (i for i, (key, _) in enumerate(ordered) if (key < after if page.descending else key > after)),
            len(ordered),
        )
    chunk = ordered[start:start + page.limit]
    paging: dict[str, str] = {}
    if page.token_given:
        previous_start = max(0, start - page.limit)
        paging["previous"] = page_url(request, encode_token(ordered[previous_start - 1][0]) if previous_start else None)
    if start + page.limit < len(ordered):
        paging["next"] = page_url(request, encode_token(chunk[-1][0]))
    return {"data": [project(record, spec) for _, record in chunk], "meta": {"paging": paging, "records": len(ordered)}}
