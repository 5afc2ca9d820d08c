"""The demo backend's command line (`main`) and server loop (`run`), used by `python -m` and the project CLI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiohttp import web

from .app import make_app
from .firm import generate_firm


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def run(listen: str, scale: int, seed: int = 0) -> None:
    """Serve a generated firm on `listen` until SIGINT/SIGTERM (or until cancelled)."""
    host, port = parse_listen(listen)
    app = make_app(generate_firm(scale=scale, seed=seed))
    # handler_cancellation: a `hang` fault ends when its client goes away; shutdown never waits long.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        print(f"demo backend (scale {scale}) listening on http://{host}:{port}/api/v4/", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-backend", description="Serve the demo legacy Clio v4 backend.")
    parser.add_argument("--listen", default="127.0.0.1:8081", help="HOST:PORT to listen on (default %(default)s)")
    parser.add_argument("--scale", type=int, default=1, help="firm size multiplier (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the firm (default %(default)s)")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    try:
        parse_listen(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.listen, args.scale, args.seed))
    return 0

