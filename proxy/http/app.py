"""App wiring: build the proxy app from a RunConfig and a loaded policy/settings pair.

The upstream session lives in `cleanup_ctx`, one per app; everything else under typed keys.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from ..config import RunConfig
from ..facts.service import FactsService
from ..log import VersionedLogger, make_logger
from ..metrics import Metrics
from ..recent import RecentDecisions
from ..report import Report, now_iso
from .answers import error_response
from .handler import answer_started, handle
from .state import SERVICES, InFlight, Live, Loaded, ReloadStatus, Services
from .upstream import Upstream


def make_app(config: RunConfig, loaded: Loaded, *, logger: Any = None) -> web.Application:
    metrics = Metrics.create()
    upstream = Upstream(
        config.upstream,
        connect_timeout=config.connect_timeout,
        headers_timeout=config.upstream_headers_timeout,
        idle_timeout=config.upstream_idle_timeout,
        connections=config.upstream_connections,
        tls=config.upstream_ssl,
    )
    facts = FactsService(
        upstream, ttl=config.facts_ttl, maxsize=config.facts_cache_size,
        on_crawl=lambda fact: metrics.facts_fetches.labels(fact).inc(),
        on_lookup=lambda cache, hit: metrics.facts_cache.labels(cache, "hit" if hit else "miss").inc(),
        on_crawl_started=lambda fact: metrics.facts_crawls.labels(fact).inc(),
    )
    live = Live(loaded, shadow_reload=ReloadStatus(True, time.time(), "start") if loaded.shadow else None)
    services = Services(
        config, live, upstream, facts, metrics,
        VersionedLogger(logger if logger is not None else make_logger(level=config.log_level)),
        InFlight(config.max_in_flight),
        # Unset, a random key: tags verify only at this process, so If-Match with another replica's
        # (or a restarted one's) tag fails its precondition, never passes it.
        config.etag_key if config.etag_key is not None else os.urandom(32),
        report=Report(since=now_iso()), recent=RecentDecisions(config.decisions_ring),
    )
    gate = services.in_flight
    metrics.in_flight.set_function(lambda: gate.count)  # read at scrape time: nothing to do per request
    _announce(services, services.live.reload)
    app = web.Application(client_max_size=config.max_write_body, handler_args={
        "max_field_size": 8190, "max_line_size": 8190,
    })
    app[SERVICES] = services

    async def upstream_session(_: web.Application) -> AsyncIterator[None]:
        await upstream.start()
        yield
        await upstream.close()

    app.cleanup_ctx.append(upstream_session)
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_response_prepare.append(answer_started)
    return app


_WIRE_TYPES = {400: "BadRequest", 408: "RequestTimeout", 413: "PayloadTooLarge",
               431: "RequestHeaderFieldsTooLarge", 500: "InternalServerError"}


class _ProxyRequestHandler(RequestHandler):
    """aiohttp answers requests it cannot parse itself, with a page quoting up to ~100 of the
    request's bytes (a token among them) and a traceback in its log. Ours is the API's generic body,
    and the log it writes to is silenced (see ProxyRunner)."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, None)  # raises if a response was already started
        response = error_response(status, _WIRE_TYPES.get(status, "Error"), "the request could not be read")
        response.force_close()
        return response


class _ProxyServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProxyRequestHandler(self, loop=self._loop, **self._kwargs)


def quiet_logger() -> logging.Logger:
    """Where aiohttp's own connection-level errors go: nowhere, since they quote request bytes."""
    logger = logging.getLogger("redaction_proxy.aiohttp_server")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


class ProxyRunner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests with the API's generic error body."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(app, logger=quiet_logger(), **kwargs)

    async def drain(self, grace: float, idle: Callable[[], bool]) -> None:
        await drain(self, grace, idle)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server with no seam for the connection handler class; swapping the class
        # of the one instance it made is the smallest change that keeps everything else aiohttp's.
        server.__class__ = _ProxyServer
        return server


def reload(app: web.Application, loaded: Loaded, trigger: str = "signal") -> None:
    """Swap policies and settings as one; cached visible sets were computed under the old ones."""
    services = app[SERVICES]
    services.live.current = loaded
    services.facts.invalidate()
    services.metrics.reloads.labels("success").inc()
    _announce(services, ReloadStatus(True, time.time(), trigger))
    services.log.info("reloaded", trigger=trigger, policy_version=loaded.policies.version,
                      settings_version=loaded.settings_version)


def reload_unchanged(app: web.Application, trigger: str) -> None:
    """The files were touched but compile to the versions serving now: nothing to swap, and the
    last reload is good again (a broken file put back as it was)."""
    services = app[SERVICES]
    services.metrics.reloads.labels("unchanged").inc()
    _announce(services, ReloadStatus(True, time.time(), trigger))


def reload_failed(app: web.Application, problems: tuple[str, ...], trigger: str) -> None:
    """Keep the old set serving, and say so everywhere an operator looks: metrics, /readyz, /policies, log."""
    services = app[SERVICES]
    services.metrics.reloads.labels("failure").inc()
    _announce(services, ReloadStatus(False, time.time(), trigger, problems))
    current = services.live.current
    services.log.error("reload_failed_keeping_old_config", trigger=trigger, problems=list(problems),
                       policy_version=current.policies.version, settings_version=current.settings_version)


def shadow_reloaded(app: web.Application, status: ReloadStatus) -> None:
    """How the candidate set's reload went; a failed one keeps the old candidate deciding, and says so."""
    services = app[SERVICES]
    services.live.shadow_reload = status
    services.metrics.reloads.labels("shadow_success" if status.ok else "shadow_failure").inc()
    if not status.ok:
        shadow = services.live.current.shadow
        services.log.error("shadow_reload_failed_keeping_old_candidate", trigger=status.trigger,
                           problems=list(status.problems),
                           shadow_policy_version=shadow.policies.version if shadow else None)


def _announce(services: Services, status: ReloadStatus) -> None:
    current = services.live.current
    services.live.reload = status
    services.log.bind_versions(current.policies.version, current.settings_version)
    services.metrics.set_loaded(current.policies.version, current.settings_version, services.config.mode.value)
    services.metrics.reload_successful.set(1 if status.ok else 0)
    services.metrics.reload_timestamp.set(status.at)


async def drain(runner: web.BaseRunner, grace: float, idle: Callable[[], bool], tick: float = 0.02) -> None:
    """Stop listening, let the requests in flight finish within `grace`, then close every connection.

    aiohttp's own cleanup asks the connections it knows to close once, then gives each one the whole
    shutdown timeout to end its handler task. A connection accepted just as the listener closed is
    not known yet at that one pass: it either waits for a request that never comes (the process sat
    out the full grace after its last answer) or outlives the cleanup. Here the close request is
    repeated on every tick until nothing is in flight (at least two ticks, so accepts in progress
    land), and the runner's own shutdown timeout (set small in `serve`) only bounds writing out
    answers already made.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    server = runner.server
    for site in list(runner.sites):
        await site.stop()
    quiet_ticks = 0
    while server is not None and loop.time() < deadline:
        server.pre_shutdown()  # idle connections close now, busy ones after their answer
        # Two quiet ticks in a row: a request parsed but not yet in the handler is counted too.
        quiet_ticks = quiet_ticks + 1 if idle() else 0
        if quiet_ticks >= 2:
            break
        await asyncio.sleep(tick)
    await runner.cleanup()
    if server is not None:
        await asyncio.sleep(tick)
        for connection in server.connections:
            # Accepted as the listener closed and known only after the cleanup: never served, and
            # left open by aiohttp. Closed, its client sees what a refused connection would tell it.
            connection.force_close()
