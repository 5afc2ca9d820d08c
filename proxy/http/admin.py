"""The admin listener, on its own port: liveness, readiness, Prometheus metrics, what is loaded, the
rollout report and the decisions of recent requests."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from yarl import URL

from ..report import now_iso
from ..report_render import render_html
from .state import SERVICES, Services


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def loaded_versions(services: Services) -> dict[str, Any]:
    """What is serving and how the last reload went (a failed one keeps the old set serving)."""
    current, last = services.live.current, services.live.reload
    out: dict[str, Any] = {
        "policy_version": current.policies.version,
        "settings_version": current.settings_version,
        "last_reload": {"successful": last.ok, "at": last.at, "trigger": last.trigger,
                        "problems": list(last.problems)},
    }
    shadow, shadow_last = current.shadow, services.live.shadow_reload
    if shadow is not None and shadow_last is not None:
        # The candidate (--shadow-policies): decided beside the live set, never applied.
        out["shadow"] = {"policy_version": shadow.policies.version, "settings_version": shadow.settings_version,
                         "last_reload": {"successful": shadow_last.ok, "at": shadow_last.at,
                                         "trigger": shadow_last.trigger, "problems": list(shadow_last.problems)}}
    return out


async def readyz(request: web.Request) -> web.Response:
    """Ready when a policy set is loaded, the proxy is not draining and, with --ready-requires-upstream
    on (a sidecar), the backend accepts a connection. Off (a gateway), a backend outage keeps pods in
    their Service, so clients get the proxy's JSON 502/503 rather than connection errors.

    A failed reload does not make it unready: the last good set keeps serving (Envoy's and nginx's
    way), and the body, /policies and the metrics say the reload failed.
    """
    services = request.app[SERVICES]
    if services.in_flight.draining:
        # Shutting down: out of the Service's endpoints while the requests in flight finish.
        return web.json_response({"status": "draining", **loaded_versions(services)}, status=503)
    if services.config.ready_requires_upstream and not await _upstream_accepts(services.upstream.origin):
        return web.json_response({"status": "upstream unreachable", **loaded_versions(services)}, status=503)
    return web.json_response({"status": "ready", **loaded_versions(services)})


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
                            "status": getattr(b.spec, "status", None) or None,  # a refusing action's spec says
                            "seed": b.seed} for b in r.checks],
                "source": r.source,
            }
            for r in loaded.policies.routes
        ],
    })


def _snapshot(services: Services) -> dict[str, object]:
    return services.report.snapshot(mode=services.config.mode.value,
                                    policy_version=services.live.current.policies.version)


async def report(request: web.Request) -> web.Response:
    """What enforcement changed (or, in dry-run, would change) since start or the last reset."""
    return web.json_response(_snapshot(request.app[SERVICES]), headers={"Cache-Control": "no-store"})


async def report_html(request: web.Request) -> web.Response:
    return web.Response(text=render_html(_snapshot(request.app[SERVICES])), content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def report_reset(request: web.Request) -> web.Response:
    """POST only: a reset loses counts, so a link or a crawler following GETs must not do it."""
    services = request.app[SERVICES]
    services.report.reset(now_iso())
    return web.json_response({"status": "reset", "since": services.report.since})


async def decisions(request: web.Request) -> web.Response:
    """One recent policed request: route, user id, each decision's rule, action, path and object id."""
    entry = request.app[SERVICES].recent.get(request.match_info["request_id"])
    if entry is None:
        return web.json_response({"error": {"type": "NotFound", "message": "no recent request has this id"}},
                                 status=404)
    return web.json_response(entry, headers={"Cache-Control": "no-store"})


ROUTES = (
    ("GET", "/healthz", "healthz"), ("GET", "/readyz", "readyz"), ("GET", "/metrics", "metrics"),
    ("GET", "/policies", "policies"), ("GET", "/report", "report"), ("GET", "/report.html", "report_html"),
    ("POST", "/report/reset", "report_reset"), ("GET", "/decisions/{request_id}", "decisions"),
)
"""The admin listener's routes and their handlers' names: this module's, and with --workers the
supervisor's (proxy/http/fanout.py), which must answer the same ones."""


def add_routes(app: web.Application, handlers: Any) -> None:
    """ROUTES served by the handlers of the same names in `handlers` (a module)."""
    for method, path, name in ROUTES:
        app.router.add_route(method, path, getattr(handlers, name))


def make_admin_app(proxy_app: web.Application) -> web.Application:
    app = web.Application()
    app[SERVICES] = proxy_app[SERVICES]
    add_routes(app, sys.modules[__name__])
    return app
