"""Running the proxy: listeners, signals (SIGTERM drains, SIGHUP reloads), and loading config.

Config is loaded and compiled before anything listens; a reload that fails keeps the old config,
loudly.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import RunConfig
from .facts.settings import load_settings
from .http.admin import make_admin_app
from .http.app import ProxyRunner, make_app, reload
from .http.state import SERVICES, Loaded
from .policy.coverage import policy_problems
from .policy.load import bundled_policies, load_policies
from .policy.spec import SpecIndex, bundled_specs
from .yamldoc import ConfigError


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
    return Loaded(compiled, loaded_settings)


async def serve(
    config: RunConfig, loaded: Loaded, *, logger: Any = None,
    started: Callable[[web.AppRunner], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    app = make_app(config, loaded, logger=logger)
    log = app[SERVICES].log
    runner = ProxyRunner(
        app,
        shutdown_timeout=config.shutdown_grace,
        # aiohttp arms this timer when a connection opens: a client slow to send its headers is cut.
        keepalive_timeout=config.client_header_timeout,
        access_log=None,
        handler_cancellation=False,  # a client going away must not cut a write half-way upstream
    )
    admin_runner = web.AppRunner(make_admin_app(app), access_log=None)
    await runner.setup()
    await admin_runner.setup()
    for site_runner, (host, port) in ((runner, config.listen), (admin_runner, config.admin_listen)):
        try:
            await web.TCPSite(site_runner, host, port).start()
        except OSError as exc:  # a port in use: one line from the CLI, nothing left open behind it
            await admin_runner.cleanup()
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_hup() -> None:
        try:
            reload(app, load(config.policies, config.settings))
            log.info("reloaded", policy_version=app[SERVICES].live.current.policies.version)
        except ConfigError as exc:
            log.error("reload_failed_keeping_old_config", problems=exc.problems,
                      policy_version=app[SERVICES].live.current.policies.version)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    log.info("listening", listen=f"{config.listen[0]}:{config.listen[1]}",
             admin_listen=f"{config.admin_listen[0]}:{config.admin_listen[1]}",
             upstream=str(config.upstream), mode=config.mode.value,
             policy_version=loaded.policies.version)
    if started is not None:
        await started(runner)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("draining")
        await admin_runner.cleanup()
        await runner.cleanup()  # stop listening, let in-flight requests finish within the grace
        log.info("stopped")
