"""App wiring: build the proxy app from a RunConfig and a loaded policy/settings pair.

The upstream session lives in `cleanup_ctx`, one per app; everything else under typed keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..config import RunConfig
from ..facts.service import FactsService
from ..log import make_logger
from ..metrics import Metrics
from .handler import handle
from .state import SERVICES, InFlight, Live, Loaded, Services
from .upstream import Upstream


def make_app(config: RunConfig, loaded: Loaded, *, logger: Any = None) -> web.Application:
    metrics = Metrics.create()
    upstream = Upstream(
        config.upstream,
        connect_timeout=config.connect_timeout,
        headers_timeout=config.upstream_headers_timeout,
        idle_timeout=config.upstream_idle_timeout,
        connections=config.upstream_connections,
    )
    facts = FactsService(
        upstream, ttl=config.facts_ttl, maxsize=config.facts_cache_size,
        on_crawl=lambda fact: metrics.facts_fetches.labels(fact).inc(),
    )
    services = Services(
        config, Live(loaded), upstream, facts, metrics,
        logger if logger is not None else make_logger(level=config.log_level),
        InFlight(config.max_in_flight),
    )
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
    return app


def reload(app: web.Application, loaded: Loaded) -> None:
    """Swap policies and settings as one; cached visible sets were computed under the old ones."""
    services = app[SERVICES]
    services.live.current = loaded
    services.facts.invalidate()
