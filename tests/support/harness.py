"""Starting the real proxy on a real socket in front of a backend, with its logs captured."""

from __future__ import annotations

import argparse
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from proxy.config import build_config
from proxy.http.admin import make_admin_app
from proxy.http.app import ProxyRunner, make_app
from proxy.http.state import SERVICES, Loaded, Services
from proxy.log import make_logger
from proxy.serve import load_config

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"


@dataclass
class RunningProxy:
    server: TestServer
    admin: TestServer
    logs: io.StringIO

    @property
    def url(self) -> URL:
        return URL(str(self.server.make_url("/")).rstrip("/"))

    @property
    def admin_url(self) -> URL:
        return URL(str(self.admin.make_url("/")).rstrip("/"))

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    def log_lines(self) -> list[str]:
        return self.logs.getvalue().splitlines()

    async def close(self) -> None:
        await self.admin.close()
        await self.server.close()


class ProxyTestServer(TestServer):
    """A TestServer running the app as `serve` does: ProxyRunner, no handler cancellation."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return ProxyRunner(self.app, **{**kwargs, "handler_cancellation": False})


async def start_proxy(
    upstream: URL | str,
    settings: Path,
    *,
    policies: Path | None = None,
    mode: str = "enforce",
    loaded: Loaded | None = None,
    **options: Any,
) -> RunningProxy:
    """The real proxy; `loaded` (policies and settings compiled by the caller, e.g. against a registry
    with a rule added) replaces what `policies` and `settings` would load."""
    namespace = argparse.Namespace(
        upstream=str(upstream).rstrip("/"), settings=str(settings), mode=mode,
        policies=str(policies or POLICIES), listen="127.0.0.1:1", admin_listen="127.0.0.1:2",
        # A chunked answer streams in tests unless one asks otherwise: "streamed" cases send small
        # bodies chunked (tests/test_streaming.py reads chunked pages whole with the real default).
        # REDACTION_PROXY_NATIVE=off runs a suite against the pure path (.ci/run does, for the policed tests).
        **{"buffer_chunked_index": "0", "native": os.environ.get("REDACTION_PROXY_NATIVE", "auto"),
           **{k: str(v) for k, v in options.items()}},
    )
    config = build_config(namespace, environ={})
    logs = io.StringIO()
    app = make_app(config, loaded or load_config(config), logger=make_logger(logs, "debug"))
    server = ProxyTestServer(app, port=0)
    await server.start_server(keepalive_timeout=config.client_header_timeout)
    admin = TestServer(make_admin_app(app), port=0)
    await admin.start_server()
    return RunningProxy(server, admin, logs)


async def start_app(app: web.Application) -> TestServer:
    server = TestServer(app, port=0)
    await server.start_server()
    return server
