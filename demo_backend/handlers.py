"""The generic resource handlers: index, show, create, update and delete over the firm's stores,
with legacy matter access, `fields` projection, filters, paging and ETags."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError, argument_error, json_response, not_found
from .fields import FieldsError, FieldSpec, parse_fields, project
from .hooks import after_delete, after_store, after_write
from .injury import detail_of
from .model import Firm, Record
from .paging import index_payload, parse_page_request
from .resources import Resource, filter_values, is_visible
from .shapes import now_stamp, refresh_etag
from .writes import WriteContext, apply_write, parse_body


@dataclass(frozen=True)
class Call:
    """One authenticated API request routed to a resource."""

    request: web.Request
    firm: Firm
    caller: Record
    resource: Resource
    record_id: int | None = None

    @property
    def accessible(self) -> frozenset[int] | None:
        return self.firm.accessible_matters(self.caller["id"])

    def spec(self) -> FieldSpec:
        try:
            return parse_fields(self.request.query.get("fields"))
        except FieldsError as exc:
            raise argument_error(str(exc)) from None

    def write_context(self) -> WriteContext:
        return WriteContext(self.firm, self.caller, self.accessible)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def record_response(call: Call, record: Record, status: int = 200) -> web.Response:
    response = json_response({"data": project(record, call.spec())}, status)
    if "etag" in record:
        response.headers["ETag"] = record["etag"]
    return response


def _etag_listed(header: str, etag: str) -> bool:
    return any(value.strip() in ("*", etag) for value in header.split(","))


def show_record(call: Call, record: Record) -> web.Response:
    spec = call.spec()
    inm = call.request.headers.get("If-None-Match")
    if inm is not None and "etag" in record and _etag_listed(inm, record["etag"]):
        return web.Response(status=304, headers={"ETag": record["etag"]})
    response = json_response({"data": project(record, spec)})
    if "etag" in record:
        response.headers["ETag"] = record["etag"]
    return response


def check_if_match(call: Call, record: Record) -> None:
    header = call.request.headers.get("If-Match")
    if header is not None and not _etag_listed(header, record.get("etag", "")):
        raise ApiError(412, "PreconditionFailed", "The record has changed since the given ETag (If-Match)")


def _ids_param(request: web.Request) -> set[str]:
    return {v for name in ("ids[]", "ids") for raw in request.query.getall(name, []) for v in raw.split(",") if v}


def filtered(call: Call, entries: Iterable[tuple[int, Record]]) -> list[tuple[int, Record]]:
    """Entries left after the resource's filters and `ids[]` (matter access is the caller's job)."""
    query = call.request.query
    wanted = {name: query[name] for name in call.resource.filters if name in query}
    ids = _ids_param(call.request)
    out: list[tuple[int, Record]] = []
    for key, record in entries:
        if ids and str(key) not in ids:
            continue
        if all(_matches(filter_values(call.resource.name, name, record), value) for name, value in wanted.items()):
            out.append((key, record))
    return out


def _matches(values: list[Any], wanted: str) -> bool:
    if wanted == "null":
        return not values
    return wanted in {str(v) for v in values}


def index_response(call: Call, entries: Iterable[tuple[int, Record]]) -> web.Response:
    spec = call.spec()
    page = parse_page_request(call.request)
    return json_response(index_payload(call.request, filtered(call, entries), spec, page))


def visible_record(call: Call) -> Record:
    store = call.firm.store(call.resource.name)
    record = store.get(call.record_id) if call.record_id is not None else None
    if record is None or not is_visible(call.resource.name, record, call.accessible):
        raise not_found(f"No {call.resource.name} record with id {call.record_id}")
    return record


async def index(call: Call) -> web.StreamResponse:
    accessible = call.accessible
    name = call.resource.name
    store = call.firm.store(name)
    return index_response(call, ((k, r) for k, r in store.items() if is_visible(name, r, accessible)))


async def show(call: Call) -> web.StreamResponse:
    return show_record(call, visible_record(call))


async def create(call: Call) -> web.StreamResponse:
    resource, firm = call.resource, call.firm
    data = parse_body(await call.request.read())
    spec = call.spec()
    assert resource.blank is not None
    record = resource.blank(firm.allocate_id(resource.name), now_stamp())
    ctx = call.write_context()
    before = dict(record)
    apply_write(ctx, resource, record, data)
    after_write(ctx, resource.name, record, True, before)
    refresh_etag(record)
    firm.store(resource.name)[int(record["id"])] = record
    after_store(ctx, resource.name, record)
    refresh_etag(record)
    response = json_response({"data": project(record, spec)}, 201)
    response.headers["ETag"] = record["etag"]
    return response


async def update(call: Call) -> web.StreamResponse:
    if call.resource.name in ("medical_records", "medical_bills"):
        return await _update_medical_item(call)
    record = visible_record(call)
    check_if_match(call, record)
    data = parse_body(await call.request.read())
    call.spec()
    before = dict(record)
    ctx = call.write_context()
    apply_write(ctx, call.resource, record, data)
    after_write(ctx, call.resource.name, record, False, before)
    record["updated_at"] = now_stamp()
    refresh_etag(record)
    after_store(ctx, call.resource.name, record)
    refresh_etag(record)
    return record_response(call, record)


async def delete(call: Call) -> web.StreamResponse:
    if call.resource.name in ("medical_records", "medical_bills"):
        return await _delete_medical_item(call)
    record = visible_record(call)
    check_if_match(call, record)
    call.firm.store(call.resource.name).pop(int(record["id"]))
    after_delete(call.write_context(), call.resource.name, record)
    return web.Response(status=204)


def _medical_item(call: Call) -> tuple[Record, Record]:
    """(item, its medical records detail), visible through the detail's matter."""
    name = call.resource.name
    item = call.firm.store(name).get(call.record_id or -1)
    detail = detail_of(call.firm, name, call.record_id or -1) if item is not None else None
    if item is None or detail is None or not is_visible("medical_records_details", detail, call.accessible):
        raise not_found(f"No {name} record with id {call.record_id}")
    return item, detail


async def _update_medical_item(call: Call) -> web.StreamResponse:
    item, detail = _medical_item(call)
    check_if_match(call, item)
    data = parse_body(await call.request.read())
    call.spec()
    apply_write(call.write_context(), call.resource, item, data)
    refresh_etag(item)
    detail["updated_at"] = now_stamp()
    refresh_etag(detail)
    return record_response(call, item)


async def _delete_medical_item(call: Call) -> web.StreamResponse:
    item, detail = _medical_item(call)
    check_if_match(call, item)
    call.firm.store(call.resource.name).pop(item["id"])
    detail[call.resource.name] = [i for i in detail[call.resource.name] if i["id"] != item["id"]]
    refresh_etag(detail)
    return web.Response(status=204)
