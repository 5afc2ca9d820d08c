"""The floor of any Python redaction relay: aiohttp in and out, orjson loads, the redaction, orjson dumps,
and nothing else (no policy, no facts, no checks, no header hygiene, no logs).

`python -m peers.floor_relay UPSTREAM PORT` with bench/ on PYTHONPATH (bench/run.py starts it so).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from peers.redact import CALLER_AUTHORIZATION, redact

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def handle(request: web.Request) -> web.Response:
    auth = request.headers.get("Authorization", "")
    session, upstream = request.app[SESSION], request.app[UPSTREAM]
    async with session.get(upstream + request.path_qs, headers={"Authorization": auth}) as r:
        body = await r.read()
    if r.status == 200 and request.path.startswith("/api/v4/activities") and auth == CALLER_AUTHORIZATION:
        body = redact(body)
    return web.Response(status=r.status, body=body, content_type="application/json")


async def session_context(app: web.Application) -> AsyncIterator[None]:
    app[SESSION] = aiohttp.ClientSession()
    yield
    await app[SESSION].close()


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(session_context)
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m peers.floor_relay",
                                     description="The floor of any Python redaction relay.")
    parser.add_argument("upstream", help="the backend's origin, e.g. http://127.0.0.1:8081")
    parser.add_argument("port", type=int, help="the loopback port to listen on")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.upstream), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
