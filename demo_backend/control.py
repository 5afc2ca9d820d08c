"""The `/_demo/` control surface for subprocess tests: recorded requests, fault rules, health.

Control requests are neither recorded nor subject to faults (`/_demo/blob` is data, not control).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web

from .errors import error_response, json_response
from .faults import Fault, Faults
from .model import Firm

CONTROL_PREFIX = "/_demo/"
CONTROL_PATHS = frozenset({"/_demo/requests", "/_demo/faults", "/_demo/health"})


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the backend received it, before any fault handling."""

    method: str
    path_qs: str  # raw, exactly as received (request.raw_path)
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "path_qs": self.path_qs, "headers": [list(h) for h in self.headers],
                "body": self.body.decode("latin-1")}


REQUESTS_KEY = web.AppKey("demo_backend.requests", list[RecordedRequest])
FAULTS_KEY = web.AppKey("demo_backend.faults", Faults)
FIRM_KEY = web.AppKey("demo_backend.firm", Firm)


def is_control(path: str) -> bool:
    return path in CONTROL_PATHS


async def get_requests(request: web.Request) -> web.Response:
    return json_response([r.to_dict() for r in request.app[REQUESTS_KEY]])


async def clear_requests(request: web.Request) -> web.Response:
    request.app[REQUESTS_KEY].clear()
    return web.Response(status=204)


async def get_faults(request: web.Request) -> web.Response:
    return json_response([f.to_dict() for f in request.app[FAULTS_KEY].rules])


async def put_faults(request: web.Request) -> web.Response:
    try:
        raw = orjson.loads(await request.read())
        if not isinstance(raw, list):
            raise ValueError("the body must be a JSON list of faults")
        rules = [Fault.from_dict(item) for item in raw]
    except (ValueError, TypeError) as exc:
        return error_response(400, "ArgumentError", str(exc))
    request.app[FAULTS_KEY].replace(rules)
    return json_response([f.to_dict() for f in rules])


async def health(request: web.Request) -> web.Response:
    firm = request.app[FIRM_KEY]
    return json_response({"status": "ok", "scale": firm.scale, "seed": firm.seed})


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_demo/requests", get_requests)
    app.router.add_delete("/_demo/requests", clear_requests)
    app.router.add_get("/_demo/faults", get_faults)
    app.router.add_put("/_demo/faults", put_faults)
    app.router.add_get("/_demo/health", health)
