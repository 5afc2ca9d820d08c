"""`serve --workers N` as real processes: the workers share the port and police alike, the admin
listener is one address whose /metrics counts every worker, SIGTERM drains them all, a dead worker is
restarted, and a bad count is one line."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from demo_backend import Firm, generate_firm, make_app
from proxy.config import build_config
from tests.support.harness import start_app
from tests.support.process import ProxyProcess, spawn_proxy
from tests.test_cli import assert_one_line, run_cli, serve_argv
from tests.test_rules_demo import CONTACT_TYPES, RITA, visible_contacts

REQUESTS = 40


def log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_bytes().splitlines():
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            lines.append(event)
    return lines


def worker_pids(log: Path) -> dict[int, int]:
    """Each worker's number -> its process id, from the lines it logged when it began listening."""
    return {e["worker"]: e["pid"] for e in log_lines(log) if e.get("event") == "listening" and "worker" in e}


def sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of a series' samples whose labels include `labels`."""
    total = 0.0
    for line in metrics.splitlines():
        match = re.match(rf"{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def scrape(proxy: ProxyProcess) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{proxy.admin_url}/metrics") as r:
        assert r.status == 200
        return await r.text()


async def wait_for(predicate: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def demo() -> AsyncIterator[tuple[Firm, TestServer]]:
    firm = generate_firm(scale=1)
    backend = await start_app(make_app(firm))
    yield firm, backend
    await backend.close()


async def test_two_workers_share_the_port_police_alike_and_metrics_count_both(
    demo: tuple[Firm, TestServer], settings_file: Path, tmp_path: Path
) -> None:
    firm, backend = demo
    log = tmp_path / "proxy.log"
    origin = str(backend.make_url("/")).rstrip("/")
    proxy = await spawn_proxy(origin, settings_file, "--workers", "2", log=log)
    try:
        pids = worker_pids(log)
        assert sorted(pids) == [0, 1] and proxy.process.pid not in pids.values()
        # Twenty cold requests of one caller at once: one facts crawl per worker at most, not one each.
        path = "/api/v4/communications.json?fields=id,senders{id,name,type}&limit=200"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async def get(url: str) -> Any:
                async with http.get(url, headers=RITA) as r:
                    assert r.status == 200, await r.text()
                    return await r.json()

            answers = await asyncio.gather(*(get(proxy.url + path) for _ in range(20)))
            crawls = await scrape(proxy)
            answers += [await get(proxy.url + path) for _ in range(REQUESTS - 20)]  # a new connection each
            direct = await get(origin + path)
        visible = visible_contacts(firm, 2)
        stubbed = 0
        for got in answers:  # whichever worker answered, the restricted caller gets stubs
            for g, r in zip(got["data"], direct["data"], strict=True):
                for mine, raw in zip(g["senders"], r["senders"], strict=True):
                    if raw["type"] in CONTACT_TYPES and raw["id"] not in visible:
                        assert mine == {"id": raw["id"], "name": "****", "type": raw["type"], "redacted": True}
                        stubbed += 1
                    else:
                        assert mine == raw
        assert stubbed >= REQUESTS
        served = {e["pid"] for e in log_lines(log) if e.get("route") == "/communications"}
        assert served == set(pids.values()), f"not every worker answered: {served} of {pids}"
        facts = {m.group(1) for m in re.finditer(r'redaction_proxy_facts_crawls_total\{fact="([^"]+)"', crawls)}
        assert facts, crawls
        for fact in facts:
            assert 1 <= sample(crawls, "redaction_proxy_facts_crawls_total", fact=fact) <= 2, (fact, crawls)
        await asyncio.sleep(1)  # the in-flight gauge is sampled twice a second
        merged = await scrape(proxy)
        assert sample(merged, "redaction_proxy_requests_total", route="/communications", status="200") == REQUESTS
        assert sample(merged, "redaction_proxy_requests_in_flight") == 0
        assert sample(merged, "redaction_proxy_workers") == 2
        assert sample(merged, "redaction_proxy_build_info") == 1
        proxy.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proxy.process.wait, 20) == 0
    finally:
        proxy.stop()


async def test_sigterm_under_load_drains_every_worker_and_exits_0(settings_file: Path, tmp_path: Path) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow)
    backend = await start_app(app)
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--workers", "2",
                              "--shutdown-grace", "10", log=log)
    try:
        pids = set(worker_pids(log).values())
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            async def one() -> tuple[int, str]:
                async with http.get(f"{proxy.url}/slow") as r:
                    return r.status, await r.text()

            in_flight = [asyncio.create_task(one()) for _ in range(30)]
            busy = 0.0
            for _ in range(20):  # every request reaches a worker; the gauge is sampled twice a second
                await asyncio.sleep(0.1)
                busy = sample(await scrape(proxy), "redaction_proxy_requests_in_flight")
                if busy == 30:
                    break
            proxy.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{proxy.admin_url}/readyz") as r:
                ready = r.status
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{proxy.admin_url}/metrics") as r:
                scraped = r.status
            results = await asyncio.gather(*in_flight)
        assert results == [(200, "done")] * 30
        assert (ready, scraped) == (503, 200)
        assert busy == 30, "the merged in-flight gauge counts both workers' requests"
        assert await asyncio.to_thread(proxy.process.wait, 20) == 0
        lines = log_lines(log)
        drained = {e["pid"] for e in lines if e.get("event") == "draining" and "worker" in e}
        stopped = {e["pid"] for e in lines if e.get("event") == "stopped" and "worker" in e}
        assert drained == stopped == pids
        assert lines[-1]["event"] == "stopped" and "worker" not in lines[-1], "the supervisor stops last"
    finally:
        proxy.stop()
        await backend.close()


async def test_a_worker_that_dies_is_restarted(demo: tuple[Firm, TestServer], settings_file: Path,
                                               tmp_path: Path) -> None:
    _, backend = demo
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--workers", "2", log=log)
    try:
        pids = worker_pids(log)
        os.kill(pids[0], signal.SIGKILL)
        await wait_for(lambda: any(e.get("event") == "worker_restarted" for e in log_lines(log)), "a restart")
        exited = next(e for e in log_lines(log) if e.get("event") == "worker_exited")
        assert (exited["worker"], exited["pid"], exited["exit_status"]) == (0, pids[0], -signal.SIGKILL)
        restarted = next(e for e in log_lines(log) if e.get("event") == "worker_restarted")
        assert restarted["worker"] == 0 and restarted["pid"] not in pids.values()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(10):
                async with http.get(f"{proxy.url}/api/v4/contacts.json?fields=id", headers=RITA) as r:
                    assert r.status == 200
            async with http.get(f"{proxy.admin_url}/readyz") as r:
                assert r.status == 200
                assert {w["pid"] for w in (await r.json())["workers"]} == {restarted["pid"], pids[1]}
        merged = await scrape(proxy)
        assert sample(merged, "redaction_proxy_workers") == 2
        assert sample(merged, "redaction_proxy_worker_restarts_total") == 1
        proxy.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proxy.process.wait, 20) == 0
    finally:
        proxy.stop()


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


async def test_workers_stop_when_the_supervisor_is_killed(demo: tuple[Firm, TestServer], settings_file: Path,
                                                          tmp_path: Path) -> None:
    _, backend = demo
    log = tmp_path / "proxy.log"
    proxy = await spawn_proxy(str(backend.make_url("/")).rstrip("/"), settings_file, "--workers", "2", log=log)
    left_behind: Path | None = None
    try:
        # a worker answers its admin socket (what the supervisor waits for) just before it logs "listening"
        await wait_for(lambda: len(worker_pids(log)) == 2, "both workers to log their start")
        pids = worker_pids(log).values()
        variables = Path(f"/proc/{next(iter(pids))}/environ").read_bytes().split(b"\0")
        seat = next(v for v in variables if v.startswith(b"_REDACTION_PROXY_WORKER="))
        left_behind = Path(os.fsdecode(seat.partition(b":")[2])).parent  # nobody else removes it
        proxy.process.kill()  # no signal to forward: the workers see their stdin close
        await wait_for(lambda: all(gone(pid) for pid in pids), "the orphaned workers to exit")
        assert {e["pid"] for e in log_lines(log) if e.get("event") == "stopped"} == set(pids), log.read_text()[-3000:]
    finally:
        proxy.stop()
        if left_behind is not None:
            shutil.rmtree(left_behind, ignore_errors=True)


@pytest.mark.parametrize("given", ["0", "x", "-1", "1.5", "257"])
def test_a_bad_worker_count_is_one_line(settings_file: Path, given: str) -> None:
    from tests.support.process import free_port

    assert_one_line(run_cli(*serve_argv(settings_file, free_port(), free_port()), "--workers", given),
                    "--workers", repr(given))
    result = run_cli(*serve_argv(settings_file, free_port(), free_port()), env={"REDACTION_PROXY_WORKERS": given})
    assert_one_line(result, "REDACTION_PROXY_WORKERS", repr(given))


def test_auto_is_the_cpus_this_process_may_run_on(settings_file: Path) -> None:
    def workers(value: str | None) -> int:
        args = argparse.Namespace(upstream="http://127.0.0.1:1", settings=str(settings_file), workers=value)
        return build_config(args, environ={}).workers

    assert workers(None) == 1
    assert workers("3") == 3
    assert workers("auto") == len(os.sched_getaffinity(0))


def test_a_taken_port_stops_every_worker_and_exits_2(settings_file: Path) -> None:
    from tests.support.process import free_port

    with socket.socket() as taken:  # bound without SO_REUSEPORT: no worker can share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(*serve_argv(settings_file, port, free_port()), "--workers", "2")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert set(result.stderr.splitlines()) == {
        f"redaction-proxy: cannot start: cannot listen on 127.0.0.1:{port}: Address already in use"}
