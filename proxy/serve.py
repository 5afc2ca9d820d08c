"""Running the proxy: listeners, signals (SIGTERM drains, SIGHUP reloads), and loading config.

Config is loaded and compiled before anything listens; a reload (SIGHUP, or the files changing)
that fails keeps the old config, loudly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from . import native
from .config import RunConfig
from .facts.settings import load_settings
from .http.admin import make_admin_app
from .http.app import ProxyRunner, drain, make_app
from .http.state import SERVICES, Loaded, Services
from .policy.coverage import policy_problems
from .policy.load import bundled_policies, load_policies
from .policy.spec import SpecIndex, bundled_specs
from .reloader import Reloader
from .yamldoc import ConfigError

ANSWER_FLUSH_SECONDS = 1.0
"""After the drain, how long an answer already made may take to be written to a slow client."""


def load(policies: Path | None, settings: Path, specs: list[SpecIndex] | None = None) -> Loaded:
    """Compile policies and settings together; ConfigError lists every problem of both.

    Policies are also held against the API's spec (the bundled ones unless `specs` is given): an `at:`
    naming no field the API has at that route, or a family of the bundled set left out unwaived, is a
    problem, so a typo cannot quietly uncover a contact.
    """
    problems: list[str] = []
    compiled = loaded_settings = None
    directory = policies or bundled_policies()
    try:
        compiled = load_policies(directory)
        problems.extend(policy_problems(compiled, directory, bundled_specs() if specs is None else specs))
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        loaded_settings = load_settings(settings)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or compiled is None or loaded_settings is None:
        raise ConfigError(problems)
    try:
        # Hashed after a good load: a file replaced in between is seen (and reloaded) by the watcher.
        settings_version = hashlib.sha256(settings.read_bytes()).hexdigest()[:12]
    except OSError as exc:
        raise ConfigError([f"{settings}: {exc.strerror}"]) from exc
    return Loaded(compiled, loaded_settings, settings_version)


def scanner_in_use(config: RunConfig) -> str:
    """What decides policed index records, as the start-up line says it (README "Speed")."""
    if config.native == "off":
        return "python (--native off)"
    return "native" if native.available() else f"python (the compiled scanner did not load: {native.UNAVAILABLE})"


def load_shadow(config: RunConfig) -> Loaded | None:
    """The candidate set of --shadow-policies/--shadow-settings (each defaulting to the live one's), or None."""
    if not config.shadowing:
        return None
    return load(config.shadow_policies or config.policies, config.shadow_settings or config.settings)


def load_config(config: RunConfig) -> Loaded:
    """The live set with its candidate beside it; at start-up a broken candidate stops the proxy too."""
    if config.native == "require" and not native.available():
        raise ConfigError([f"--native require: the compiled scanner did not load ({native.UNAVAILABLE})"])
    loaded = load(config.policies, config.settings)
    try:
        shadow = load_shadow(config)
    except ConfigError as exc:
        raise ConfigError([f"shadow: {p}" for p in exc.problems]) from exc
    return replace(loaded, shadow=shadow)


async def serve(
    config: RunConfig, loaded: Loaded, *, logger: Any = None,
    started: Callable[[web.AppRunner], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None, admin_socket: str | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`), then drain.

    `admin_socket`: run as one of `serve --workers N`'s workers (proxy/workers.py): the public listener
    is shared with the other workers (SO_REUSEPORT), and the admin app listens on this Unix socket, for
    the supervisor only, which serves the one admin address of all the workers.
    """
    app = make_app(config, loaded, logger=logger)
    services = app[SERVICES]
    log = services.log
    runner = ProxyRunner(
        app,
        # The grace is the drain's (ProxyRunner.drain); this only bounds writing out answers already made.
        shutdown_timeout=ANSWER_FLUSH_SECONDS,
        # aiohttp arms this timer when a connection opens: a client slow to send its headers is cut.
        keepalive_timeout=config.client_header_timeout,
        access_log=None,
        handler_cancellation=False,  # a client going away must not cut a write half-way upstream
    )
    # Probes and scrapes are short: a drain's last step does not wait long for one.
    admin_runner = web.AppRunner(make_admin_app(app), access_log=None, shutdown_timeout=ANSWER_FLUSH_SECONDS)
    await runner.setup()
    await admin_runner.setup()
    (host, port), (admin_host, admin_port) = config.listen, config.admin_listen
    # A worker shares the public port with the others (the kernel spreads connections among them).
    sites: list[tuple[str, web.BaseSite]] = [
        (f"{host}:{port}", web.TCPSite(runner, host, port, reuse_port=admin_socket is not None)),
        (f"{admin_host}:{admin_port}", web.TCPSite(admin_runner, admin_host, admin_port)) if admin_socket is None
        else (admin_socket, web.UnixSite(admin_runner, admin_socket)),
    ]
    for where, site in sites:
        try:
            await site.start()
        except OSError as exc:  # a port in use: one line from the CLI, nothing left open behind it
            await admin_runner.cleanup()
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"cannot listen on {where}: {reason}") from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    reloader = Reloader(app, lambda: load(config.policies, config.settings), config.policies, config.settings,
                        shadow=(lambda: load_shadow(config)) if config.shadowing else None,
                        shadow_files=(config.shadow_policies, config.shadow_settings or config.settings))
    watching = (asyncio.create_task(reloader.watch(config.watch_interval))
                if config.watch_interval > 0 else None)
    # A worker's gauges are merged from files (prometheus-client's multiprocess mode), which a scrape-time
    # function cannot fill: the in-flight count is written there instead, sampled.
    sampling = asyncio.create_task(_sample_in_flight(services)) if admin_socket is not None else None

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.spawn, "signal")
    log.info("listening", listen=f"{config.listen[0]}:{config.listen[1]}",
             admin_listen=f"{config.admin_listen[0]}:{config.admin_listen[1]}",
             upstream=str(config.upstream), mode=config.mode.value, scanner=scanner_in_use(config))
    if started is not None:
        await started(runner)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        for task in (watching, sampling):
            if task is not None:
                task.cancel()
        await reloader.close()
        # /readyz answers 503 from here; /healthz and /metrics keep answering until the last request ends.
        services.in_flight.draining = True
        log.info("draining", in_flight=services.in_flight.count)
        await runner.drain(config.shutdown_grace, lambda: services.in_flight.count == 0)
        await drain(admin_runner, ANSWER_FLUSH_SECONDS, lambda: True)
        log.info("stopped")


IN_FLIGHT_SAMPLE_SECONDS = 0.5


async def _sample_in_flight(services: Services) -> None:
    gate, gauge = services.in_flight, services.metrics.in_flight
    while True:
        gauge.set(gate.count)
        await asyncio.sleep(IN_FLIGHT_SAMPLE_SECONDS)
