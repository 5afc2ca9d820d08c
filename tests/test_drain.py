"""A predictable drain: SIGTERM under load, twenty times; every run stops within a second of its last
answer, /readyz says 503 while requests finish, and /healthz and /metrics keep answering."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.config import build_config
from proxy.log import make_logger
from proxy.serve import load, serve
from tests.support.harness import POLICIES, start_app
from tests.support.process import free_port

RUNS = 20
BACKEND_SECONDS = 0.2


async def test_sigterm_under_load_stops_within_a_second_of_the_last_answer(settings_file: Path) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(BACKEND_SECONDS)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    backend = await start_app(app)
    try:
        for run in range(RUNS):
            await one_run(run, str(backend.make_url("/")).rstrip("/"), settings_file)
    finally:
        await backend.close()


async def one_run(run: int, upstream: str, settings: Path) -> None:
    port, admin = free_port(), free_port()
    config = build_config(argparse.Namespace(
        upstream=upstream, settings=str(settings), policies=str(POLICIES), listen=f"127.0.0.1:{port}",
        admin_listen=f"127.0.0.1:{admin}", shutdown_grace="10", watch_interval="0",
    ), environ={})
    started = asyncio.Event()

    async def on_start(_: web.AppRunner) -> None:
        started.set()

    server = asyncio.create_task(serve(config, load(config.policies, config.settings),
                                       logger=make_logger(io.StringIO()), started=on_start))
    await asyncio.wait_for(started.wait(), 10)
    answers: list[int] = []
    last_answer = 0.0

    async def client(session: aiohttp.ClientSession | None) -> None:
        nonlocal last_answer
        while not server.done():
            try:
                async with (session or aiohttp.ClientSession()) as http:
                    async with http.get(f"http://127.0.0.1:{port}/slow") as r:
                        await r.read()
                    answers.append(r.status)
                    last_answer = time.monotonic()
                    if session is None:
                        continue
                    while not server.done():  # keep-alive: the same connection, request after request
                        async with http.get(f"http://127.0.0.1:{port}/slow") as r:
                            await r.read()
                        answers.append(r.status)
                        last_answer = time.monotonic()
            except aiohttp.ClientError:
                return  # the proxy stopped taking requests

    async def admin_status(path: str) -> int | None:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.get(f"http://127.0.0.1:{admin}{path}") as r:
                await r.read()
                return r.status
        except aiohttp.ClientError:
            return None  # the admin listener closed: the drain is over

    keep_alive = aiohttp.ClientSession()
    load_tasks = [asyncio.create_task(client(keep_alive if i % 2 else None)) for i in range(6)]
    try:
        await asyncio.sleep(0.1 + 0.03 * (run % 7))  # SIGTERM lands at a different point of each request
        os.kill(os.getpid(), signal.SIGTERM)
        during: list[tuple[int | None, int | None, int | None]] = []
        while not server.done():
            polls = asyncio.gather(admin_status("/readyz"), admin_status("/healthz"), admin_status("/metrics"))
            waiting: list[asyncio.Future[Any]] = [polls, server]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not polls.done():
                # Connected as the admin listener closed: in a real process, exiting closes it.
                polls.cancel()
                await asyncio.gather(polls, return_exceptions=True)
                break
            ready, health, scrape = polls.result()
            during.append((ready, health, scrape))
        stopped = time.monotonic()
        await server
        await asyncio.gather(*load_tasks)
    finally:
        await keep_alive.close()
    assert answers and set(answers) == {200}, f"run {run}: in-flight requests were cut: {answers}"
    assert stopped - last_answer < 1.0, f"run {run}: stopped {stopped - last_answer:.2f}s after the last answer"
    assert (503, 200, 200) in during, f"run {run}: no /readyz 503 while draining: {during}"
    assert all(ready != 200 for ready, _, _ in during), f"run {run}: ready while draining: {during}"
