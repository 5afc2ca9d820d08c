"""The admin listener, on its own port: liveness, readiness, Prometheus metrics, what is loaded."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .state import SERVICES, Services


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def loaded_versions(services: Services) -> dict[str, Any]:
    """What is serving and how the last reload went (a failed one keeps the old set serving)."""
    current, last = services.live.current, services.live.reload
    return {
        "policy_version": current.policies.version,
        "settings_version": current.settings_version,
        "last_reload": {"successful": last.ok, "at": last.at, "trigger": last.trigger,
                        "problems": list(last.problems)},
    }


async def readyz(request: web.Request) -> web.Response:
    """Ready when a policy set is loaded, the proxy is not draining and the backend accepts a connection.

    A failed reload does not make it unready: the last good set keeps serving (Envoy's and nginx's
    way), and the body, /policies and the metrics say the reload failed.
    """
    services = request.app[SERVICES]
    if services.in_flight.draining:
        # Shutting down: out of the Service's endpoints while the requests in flight finish.
        return web.json_response({"status": "draining", **loaded_versions(services)}, status=503)
    origin = services.upstream.origin
    port = origin.port or (443 if origin.scheme == "https" else 80)
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(origin.host, port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError):
        return web.json_response({"status": "upstream unreachable", **loaded_versions(services)}, status=503)
    return web.json_response({"status": "ready", **loaded_versions(services)})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICES].metrics.exposition()
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
        **loaded_versions(services),
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
