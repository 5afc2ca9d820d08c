"""The proxy as a real subprocess (for signals): free ports, start, wait until it listens."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


async def spawn_proxy(
    upstream: str, settings: Path, *extra: str, log: Path | None = None, env: dict[str, str] | None = None
) -> ProxyProcess:
    port, admin = free_port(), free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps its own copy
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "serve", "--upstream", upstream, "--settings", str(settings),
         "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}", *extra],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    if log:
        out.close()  # type: ignore[union-attr]
    running = ProxyProcess(process, port, admin)
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{running.admin_url}/healthz") as r:
                    if r.status == 200:
                        return running
            except aiohttp.ClientError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"proxy exited with {process.returncode}")
            await asyncio.sleep(0.05)
    running.stop()
    raise RuntimeError("proxy did not start")
