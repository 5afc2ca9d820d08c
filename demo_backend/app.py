"""make_app: the demo legacy backend as an aiohttp application (recording, faults, auth, routing, gzip)."""

from __future__ import annotations

import asyncio
import gzip

from aiohttp import web
from aiohttp.typedefs import Handler

from . import handlers
from .control import FAULTS_KEY, FIRM_KEY, REQUESTS_KEY, RecordedRequest, add_control_routes, is_control
from .errors import ApiError, error_response
from .faults import AFTER_KINDS, BEFORE_KINDS, Faults, answer_before, reshape, send_broken
from .handlers import Call
from .model import Firm, Record
from .routes import API_PREFIX, resolve
from .synthetic import blob, synthetic_count, synthetic_index

RELEASE_KEY = web.AppKey("demo_backend.release", asyncio.Event)
DEFAULT_API_VERSION = "4.0.9"
GZIP_MIN_BYTES = 1024


@web.middleware
async def record_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_control(request.path):
        body = await request.read()
        headers = tuple((str(k), v) for k, v in request.headers.items())
        request.app[REQUESTS_KEY].append(RecordedRequest(request.method, request.raw_path, headers, body))
    return await handler(request)


def _negotiate_gzip(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.prepared or "Content-Encoding" in response.headers:
        return response
    body = response.body
    if not isinstance(body, (bytes, bytearray)) or len(body) <= GZIP_MIN_BYTES:
        return response
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response.body = gzip.compress(bytes(body), compresslevel=5)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
    return response


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    fault = None if is_control(request.path) else request.app[FAULTS_KEY].take(request.method, request.path)
    if fault is not None and fault.kind in BEFORE_KINDS:
        early = await answer_before(request, fault, request.app[RELEASE_KEY])
        if early is not None:
            return early
    response = await handler(request)
    if fault is None or fault.kind not in AFTER_KINDS or not isinstance(response, web.Response):
        return _negotiate_gzip(request, response)
    if response.prepared:
        return response
    response = _negotiate_gzip(request, reshape(response, fault))
    if fault.kind in ("truncate", "close_chunked"):
        assert isinstance(response, web.Response)
        return await send_broken(request, response, fault)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Router misses answer in the API's error shape too."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPNotFound:
        return error_response(404, "NotFound", f"No route matches {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        return error_response(405, "MethodNotAllowed", f"{exc.method} is not allowed here")


def _caller(request: web.Request, firm: Firm) -> Record:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    prefix, _, number = token.strip().partition("-")
    user = None
    if scheme.lower() == "bearer" and prefix == "token" and number.isdigit() and number.isascii():
        user = firm.users.get(int(number))
    if user is None or not user["enabled"]:
        raise ApiError(401, "Unauthorized", "The access token is missing, invalid or expired",
                       {"WWW-Authenticate": 'Bearer realm="demo-backend"'})
    return user


async def api_entry(request: web.Request) -> web.StreamResponse:
    firm = request.app[FIRM_KEY]
    caller = _caller(request, firm)
    route = resolve(request.method, request.path)
    call = Call(request, firm, caller, route.resource, route.record_id)
    if route.handler is handlers.index:
        count = synthetic_count(call)
        if count is not None:
            return await synthetic_index(call, count)
    return await route.handler(call)


async def _echo_api_version(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(API_PREFIX):
        response.headers["X-API-VERSION"] = request.headers.get("X-API-VERSION", DEFAULT_API_VERSION)


async def _release_hangs(app: web.Application) -> None:
    app[RELEASE_KEY].set()


def make_app(firm: Firm, *, faults: Faults | None = None) -> web.Application:
    """The demo backend serving `firm`; `app[REQUESTS_KEY]` records requests, `app[FAULTS_KEY]` injects faults."""
    app = web.Application(middlewares=[record_middleware, fault_middleware, error_middleware])
    app[FIRM_KEY] = firm
    app[REQUESTS_KEY] = []
    app[FAULTS_KEY] = faults if faults is not None else Faults()
    app[RELEASE_KEY] = asyncio.Event()
    app.on_response_prepare.append(_echo_api_version)
    app.on_shutdown.append(_release_hangs)
    add_control_routes(app)
    app.router.add_get("/_demo/blob", blob)
    app.router.add_route("*", "/api/v4/{tail:.*}", api_entry)
    return app
