"""Soak: the demo backend and the proxy as real processes on loopback, then a steady mixed load.

Users token-1 (sees all), token-2 (restricted by every rule) and token-3 (defaults), across the policed
contacts, activities, communications, calendar_entries and matters indexes and an unpoliced 64 KB blob.
Reports requests/s, p50/p99 latency, errors (any non-200, socket error or timeout) and the proxy's RSS
at the start and end (and its peak).

Run: .venv/bin/python bench/soak.py [--seconds 60] [--connections 64] [--client wrk|aiohttp] [--scale 1]
`wrk` (Debian package) is used when installed: a C client leaves the two cores to the proxy and backend.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
USERS = ("token-1", "token-2", "token-3")
ENDPOINTS = (
    "/api/v4/contacts.json?fields=id,name,type&limit=50",
    "/api/v4/activities.json?fields=id,type,quantity,price,total,user{id},matter{id},vendor{id,name}&limit=50",
    "/api/v4/communications.json?fields=id,subject,senders{id,name,type},receivers{id,name,type}&limit=50",
    "/api/v4/calendar_entries.json?fields=id,summary,attendees{id,name,type}&limit=50",
    "/api/v4/matters.json?fields=id,display_number,client{id,name}&limit=50",
    "/_demo/blob?bytes=65536",  # no policy covers it: streamed through unexamined
)
SETTINGS = {
    "defaults": {
        "contacts_visibility": "all",
        "activity_hours_visibility": "all",
        "billing_rate_visibility": "all",
        "permissions": ["matters", "documents", "contacts"],
    },
    "roles": {"Administrator": {"contacts_visibility": "all"}},
    "users": {
        "2": {
            "contacts_visibility": "restricted",
            "activity_hours_visibility": "own_and_responsible_attorney",
            "billing_rate_visibility": "own",
            "permissions": ["matters", "documents", "contacts"],
        }
    },
}

WRK_SCRIPT = """
local combos = {}
local users = {%(users)s}
local paths = {%(paths)s}
for _, u in ipairs(users) do
  for _, p in ipairs(paths) do
    table.insert(combos, wrk.format("GET", p, {["Host"] = "%(host)s", ["Authorization"] = "Bearer " .. u}))
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  errors = 0
  i = math.random(#combos)
end
function request()
  i = i %% #combos + 1
  return combos[i]
end
function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors == 1 then io.write(string.format("first non-200: %%d %%s\\n", status, string.sub(body or "", 1, 200))) end
  end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("SOAK requests=%%d duration_us=%%d non200=%%d socket_errors=%%d " ..
    "p50_ms=%%.2f p99_ms=%%.2f max_ms=%%.2f\\n",
    summary.requests, summary.duration, e, socket_errors, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def wait_listening(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{process.args!r} exited with {process.returncode}")
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def check_mix(base: str) -> None:
    """Every (user, endpoint) answers 200 before the clock starts: a soak of errors measures nothing."""
    async with aiohttp.ClientSession() as session:
        for user in USERS:
            for path in ENDPOINTS:
                async with session.get(base + path, headers={"Authorization": f"Bearer {user}"}) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"{user} {path}: {r.status}")


def run_wrk(base: str, seconds: int, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / "soak.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "host": base.split("//", 1)[1],
            "users": ", ".join(f'"{u}"' for u in USERS),
            "paths": ", ".join(f'"{p}"' for p in ENDPOINTS),
        }
    )
    threads = min(4, connections)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("SOAK ")), None)
    if line is None or os.environ.get("SOAK_VERBOSE"):
        print(out.stdout + out.stderr)
    if line is None:
        raise SystemExit("wrk gave no summary")
    fields = dict(kv.split("=") for kv in line.split()[1:])
    requests = float(fields["requests"])
    duration = float(fields["duration_us"]) / 1e6
    return {
        "requests": requests,
        "seconds": duration,
        "rps": requests / duration,
        "p50_ms": float(fields["p50_ms"]),
        "p99_ms": float(fields["p99_ms"]),
        "max_ms": float(fields["max_ms"]),
        "errors": float(fields["non200"]) + float(fields["socket_errors"]),
    }


async def run_aiohttp(base: str, seconds: int, connections: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    combos = [(u, p) for u in USERS for p in ENDPOINTS]

    async def worker(offset: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        i = offset
        while time.monotonic() < stop:
            user, path = combos[i % len(combos)]
            i += 1
            started = time.perf_counter()
            try:
                async with session.get(base + path, headers={"Authorization": f"Bearer {user}"}) as r:
                    await r.read()
                    ok = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(i, session) for i in range(connections)))
    duration = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": duration,
        "rps": len(latencies) / duration,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000,
        "errors": errors,
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--client", choices=("wrk", "aiohttp"), default="wrk" if shutil.which("wrk") else "aiohttp")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    backend_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = workdir / "settings.yaml"
        settings.write_text(yaml.safe_dump(SETTINGS))
        backend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "demo_backend",
                "--listen",
                f"127.0.0.1:{backend_port}",
                "--scale",
                str(args.scale),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proxy = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy.cli",
                "serve",
                "--upstream",
                f"http://127.0.0.1:{backend_port}",
                "--settings",
                str(settings),
                "--listen",
                f"127.0.0.1:{proxy_port}",
                "--admin-listen",
                f"127.0.0.1:{admin_port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_listening(f"http://127.0.0.1:{backend_port}/_demo/health", backend)
            await wait_listening(f"http://127.0.0.1:{admin_port}/healthz", proxy)
            base = f"http://127.0.0.1:{proxy_port}"
            await check_mix(base)
            rss_start, _ = rss_mb(proxy.pid)
            print(
                f"soak: {args.seconds}s, {args.connections} connections, client {args.client}, demo scale "
                f"{args.scale}, {len(USERS)} users x {len(ENDPOINTS)} endpoints",
                flush=True,
            )
            if args.client == "wrk":
                result = await asyncio.to_thread(run_wrk, base, args.seconds, args.connections, workdir)
            else:
                result = await run_aiohttp(base, args.seconds, args.connections)
            rss_end, rss_peak = rss_mb(proxy.pid)
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{admin_port}/metrics") as r:
                metrics = await r.text()
            five_lines = re.findall(r'_requests_total\{[^}]*status="5\d\d"[^}]*\} [0-9.e+]+', metrics)
            fives = sum(float(x.rsplit(" ", 1)[1]) for x in five_lines)
            print(f"requests     {int(result['requests'])} in {result['seconds']:.1f}s = {result['rps']:.0f} req/s")
            print(
                f"latency      p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                f"max {result['max_ms']:.1f} ms"
            )
            print(
                f"errors       {int(result['errors'])} (non-200, socket errors, timeouts); "
                f"proxy-counted 5xx {int(fives)}" + "".join(f"\n               {x}" for x in five_lines)
            )
            print(f"proxy RSS    start {rss_start:.1f} MB, end {rss_end:.1f} MB, peak {rss_peak:.1f} MB")
            return 1 if result["errors"] else 0
        finally:
            for process in (proxy, backend):
                process.terminate()
            for process in (proxy, backend):
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
