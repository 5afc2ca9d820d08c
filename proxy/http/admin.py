"""The admin listener, on its own port: liveness, readiness, Prometheus metrics, what is loaded."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from .state import SERVICES


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when a policy set is loaded and, with --ready-requires-upstream on (a sidecar), the
    backend accepts a connection. Off (a gateway), a backend outage keeps pods in their Service, so
    clients get the proxy's JSON 502/503 rather than connection errors."""
    services = request.app[SERVICES]
    if services.config.ready_requires_upstream and not await _upstream_accepts(services.upstream.origin):
        return web.json_response({"status": "upstream unreachable"}, status=503)
    return web.json_response({"status": "ready", "policy_version": services.live.current.policies.version})


async def _upstream_accepts(origin: URL) -> bool:
    port = origin.port or (443 if origin.scheme == "https" else 80)
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(origin.host, port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    return True


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICES].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def policies(request: web.Request) -> web.Response:
    """What is loaded: every route, its methods and the rules bound to it, with their seed rows."""
    services = request.app[SERVICES]
    loaded = services.live.current
    return web.json_response({
        "version": loaded.policies.version,
        "mode": services.config.mode.value,
        "files": list(loaded.policies.files),
        "settings": loaded.settings.source,
        "routes": [
            {
                "route": r.template,
                "shape": r.shape.value,
                "methods": sorted(r.methods),
                "respond": [{"rule": b.rule.value, "action": b.action.value,
                             "at": b.at.text if b.at else ".", "seed": b.seed} for b in r.respond],
                "checks": [{"rule": b.rule.value, "action": b.action.value, "methods": sorted(b.methods),
                            "status": b.status or None, "seed": b.seed} for b in r.checks],
                "source": r.source,
            }
            for r in loaded.policies.routes
        ],
    })


def make_admin_app(proxy_app: web.Application) -> web.Application:
    app = web.Application()
    app[SERVICES] = proxy_app[SERVICES]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/policies", policies)
    return app
