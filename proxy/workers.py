"""`serve --workers N`: a supervisor and N worker processes sharing the public listener (SO_REUSEPORT).

Each worker is this same command re-executed (`serve` with its own argv and environment, plus the worker's
number and admin socket), so it loads and checks everything itself and keeps its own caches. The
supervisor forwards SIGTERM/SIGINT (every worker drains) and SIGHUP (every worker reloads), restarts a
worker that dies (at most RESTARTS within RESTART_WINDOW seconds, then stops them all and exits 1), and
serves the one admin address for all of them (proxy/http/fanout.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from .config import ENV_PREFIX, RunConfig
from .http.app import drain
from .http.fanout import Seat, ask, make_fanout_app
from .log import make_logger

RESTARTS = 5
RESTART_WINDOW = 60.0
START_SECONDS = 60.0
"""How long a worker may take to answer on its admin socket before it counts as failed."""
KILL_AFTER = 10.0
"""Beyond --shutdown-grace, how long a worker that was told to stop may take before it is killed."""
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
WORKER_VARIABLE = "_REDACTION_PROXY_WORKER"
"""Set by the supervisor only, to `INDEX:SOCKET`: this process is that worker (outside the REDACTION_PROXY_*
namespace, which is the operator's)."""


class WorkerFailedError(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"worker exited with {returncode}")
        self.returncode = returncode


@dataclass(eq=False)
class Worker:
    index: int
    socket: str
    process: asyncio.subprocess.Process | None = None


class Supervisor:
    def __init__(self, config: RunConfig, argv: Sequence[str], environ: Mapping[str, str], log: Any) -> None:
        self.config = config
        self.log = log
        self._directory = Path(tempfile.mkdtemp(prefix="redaction-proxy-"))
        (self._directory / "metrics").mkdir()
        self._command = [sys.executable, "-m", "proxy.cli", *argv]
        # The workers read the same REDACTION_PROXY_* variables the supervisor did, and no others.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != WORKER_VARIABLE}
        self._env = {**inherited, **environ, METRICS_DIR_VARIABLE: self.metrics_dir}
        self.workers = [Worker(i, str(self._directory / f"worker-{i}.sock")) for i in range(config.workers)]
        self.stopping = False
        self.failed = False
        self._restarted: deque[float] = deque()
        self.restart_count = 0

    # --- what the admin listener asks (proxy/http/fanout.py: Pool) ---
    @property
    def draining(self) -> bool:
        return self.stopping

    @property
    def restarts(self) -> int:
        return self.restart_count

    @property
    def metrics_dir(self) -> str:
        return str(self._directory / "metrics")

    def seats(self) -> list[Seat]:
        return [Seat(w.index, w.process.pid, w.socket) for w in self.workers
                if w.process is not None and w.process.returncode is None]

    # --- workers ---
    async def start(self, worker: Worker) -> None:
        """Start one worker and wait until it answers on its admin socket; WorkerFailedError if it exits first."""
        worker.process = await asyncio.create_subprocess_exec(
            *self._command, env={**self._env, WORKER_VARIABLE: f"{worker.index}:{worker.socket}"},
            stdin=asyncio.subprocess.PIPE,  # its closing tells the worker the supervisor is gone
        )
        if self.stopping:  # SIGTERM came while it was being started
            _signal(worker, signal.SIGTERM)
        deadline = time.monotonic() + START_SECONDS
        seat = Seat(worker.index, worker.process.pid, worker.socket)
        while worker.process.returncode is None and time.monotonic() < deadline:
            if (await ask(seat, "GET", "/healthz")).status == 200:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(worker.process.wait()), 0.05)
        if worker.process.returncode is None:
            worker.process.kill()
        raise WorkerFailedError(await worker.process.wait())

    async def watch(self, worker: Worker, stop: asyncio.Event) -> None:
        """Reap the worker; unless stopping, log it and start another in its place, or stop everything."""
        while worker.process is not None:
            process = worker.process
            returncode = await process.wait()
            # Its live gauges go with it; its counts stay in the merged totals.
            mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping:
                return
            self.log.error("worker_exited", worker=worker.index, pid=process.pid, exit_status=returncode)
            now = time.monotonic()
            while self._restarted and now - self._restarted[0] > RESTART_WINDOW:
                self._restarted.popleft()
            if len(self._restarted) >= RESTARTS:
                self.log.error("worker_restarts_exhausted", worker=worker.index, restarts=len(self._restarted))
                self.failed = True
                stop.set()
                return
            self._restarted.append(now)
            self.restart_count += 1
            try:
                await self.start(worker)
            except WorkerFailedError:
                continue  # reaped (and counted) on the next turn
            self.log.info("worker_restarted", worker=worker.index, pid=worker.process.pid)

    async def stop_all(self, watching: list[asyncio.Task[None]]) -> int:
        """Every worker drains (its own --shutdown-grace); one still running after that and KILL_AFTER is
        killed. 0 when every worker stopped cleanly and none had to be given up on."""
        self.stopping = True
        for worker in self.workers:
            _signal(worker, signal.SIGTERM)
        done, _ = await asyncio.wait(watching, timeout=self.config.shutdown_grace + KILL_AFTER)
        if len(done) < len(watching):
            self.log.error("workers_killed_after_grace", workers=len(watching) - len(done))
            for worker in self.workers:
                _signal(worker, signal.SIGKILL)
            await asyncio.wait(watching)
            return 1
        codes = [w.process.returncode for w in self.workers if w.process is not None]
        return 1 if self.failed or any(code != 0 for code in codes) else 0

    def close(self) -> None:
        shutil.rmtree(self._directory, ignore_errors=True)


def _signal(worker: Worker, sig: signal.Signals) -> None:
    if worker.process is not None and worker.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(sig)


async def supervise(config: RunConfig, argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the workers until SIGTERM/SIGINT, then drain them all; the exit status (OSError when the
    admin address cannot be had)."""
    log = make_logger(level=config.log_level).bind(pid=os.getpid())
    supervisor = Supervisor(config, argv, environ, log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    watching: list[asyncio.Task[None]] = []
    admin = web.AppRunner(make_fanout_app(supervisor), access_log=None, shutdown_timeout=1.0)
    try:
        started = await asyncio.gather(*(supervisor.start(w) for w in supervisor.workers), return_exceptions=True)
        failures = [r for r in started if isinstance(r, BaseException)]
        watching = [asyncio.create_task(supervisor.watch(w, stop)) for w in supervisor.workers]
        if failures:
            # A worker that cannot start (its own line on stderr says why) will not start on a retry either.
            await supervisor.stop_all(watching)
            codes = {f.returncode for f in failures if isinstance(f, WorkerFailedError)}
            return 2 if codes == {2} else 1
        await admin.setup()
        try:
            await web.TCPSite(admin, *config.admin_listen).start()
        except OSError as exc:
            await supervisor.stop_all(watching)
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"cannot listen on {config.admin_listen[0]}:{config.admin_listen[1]}: "
                                     f"{reason}") from None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _forward, supervisor, signal.SIGHUP)
        log.info("supervising", workers=len(supervisor.workers), listen=f"{config.listen[0]}:{config.listen[1]}",
                 admin_listen=f"{config.admin_listen[0]}:{config.admin_listen[1]}")
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("draining", workers=len(supervisor.seats()))
        status = await supervisor.stop_all(watching)
        await drain(admin, 1.0, lambda: True)
        log.info("stopped")
        return status
    finally:
        for task in watching:
            task.cancel()
        for worker in supervisor.workers:  # an error on the way: no worker outlives the supervisor
            _signal(worker, signal.SIGKILL)
        if admin.server is not None:  # not drained: an error on the way
            await admin.cleanup()
        supervisor.close()


def _forward(supervisor: Supervisor, sig: signal.Signals) -> None:
    for worker in supervisor.workers:
        _signal(worker, sig)


async def until_orphaned(stop: asyncio.Event) -> None:
    """In a worker: standard input is the supervisor's pipe; its end (the supervisor died, even by
    SIGKILL) stops this worker too, after its drain."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        await reader.read()
    finally:
        transport.close()
    stop.set()
