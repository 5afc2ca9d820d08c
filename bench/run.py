"""End-to-end benchmark of redaction-proxy: throughput, big bodies, the JSON pipeline, cold facts.

Run: .venv/bin/python bench/run.py [--quick | --seconds S] [--throughput-only] [--instructions]
     .venv/bin/python bench/run.py --instructions-only [--instructions-requests N]

Issue 14's rows are in the throughput table (1): the restricted page with --native off beside the
default --native auto, from a backend sending it chunked, and on 1 and 2 workers (n/a while `serve`
has no --workers); each row's "x bare" is the bare relay of the same run. --instructions adds 1c:
user-space instructions per request of the proxy process counted by callgrind (`perf stat` cannot
count instructions on these VMs), N and 2N requests per row, start-up cancelled out; it takes
minutes, and --instructions-only runs it alone (no wrk, no mitmproxy).

Starts everything itself on free loopback ports (demo backend, proxy, nginx, mitmdump), checks each
endpoint answers correctly before measuring it, measures, stops everything and prints the tables.

The demo backend builds every page in Python (~1 ms of CPU for the 100 KB page), so measured
directly it is the bottleneck of every row. Every server under test therefore talks to an nginx
cache in front of it: the bytes are the demo backend's own (cached per Authorization, synthetic
size and URI), served fast enough that the figures are the proxy's and its peers'.
Needs wrk and nginx (`apt-get install -y wrk nginx`) and mitmproxy in a separate venv
(`python3 -m venv /tmp/mitm-venv && /tmp/mitm-venv/bin/pip install mitmproxy orjson`; MITM_VENV
overrides the path). Core 0: this script, wrk, the backend. Core 1: the server under test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from peers.page import FIELDS, PAGE_BYTES
from peers.redact import CALLER as RESTRICTED_USER  # the caller the peers redact for is the one checked

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BIN = ROOT / ".venv" / "bin"
MITM_VENV = Path(os.environ.get("MITM_VENV", "/tmp/mitm-venv"))
SETTINGS = ROOT / "deploy" / "demo-settings.yaml"
PEERS = ROOT / "bench" / "peers"  # the mitmproxy addon and the floor relay, importing peers.redact from bench/
PEERS_ENV = {**os.environ, "PYTHONPATH": str(PEERS.parent)}
CLIENT_CORE, SERVER_CORE = "0", "1"
BOTH_CORES = f"{CLIENT_CORE},{SERVER_CORE}"
CLK_TCK = os.sysconf("SC_CLK_TCK")

BLOB_BYTES = 102_400
BIG_TIMEOUT = 600


def fields_query(fields: str = FIELDS) -> str:
    return urllib.parse.quote(fields, safe=",")  # braces as %7B %7D: wrk and every client agree


def auth(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{user}"}


# --- processes ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child started by this script, stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], logdir: Path, core: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = logdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(["taskset", "-c", core, *argv], stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True, env=env)
        RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """The process and its descendants (nginx's worker, the proxy's --workers)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                todo += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        return found

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self in RUNNING:
            RUNNING.remove(self)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


RUNNING: list[Proc] = []


def stop_all() -> None:
    for proc in reversed(list(RUNNING)):
        proc.stop()


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --- HTTP helpers ---------------------------------------------------------------------------------

def get(port: int, target: str, headers: dict[str, str] | None = None, method: str = "GET",
        timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(port: int, target: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            if get(port, target, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{proc.name} not ready after {timeout:.0f}s:\n{proc.tail()}")


def crawl(port: int, user: int, path: str, query: str) -> tuple[list[Any], int]:
    """Every record of a backend index (following meta.paging.next), and how many pages it took."""
    target: str | None = f"{path}?{query}"
    records: list[Any] = []
    pages = 0
    while target is not None:
        status, body = get(port, target, auth(user))
        check(status == 200, f"crawl {target}: status {status}")
        doc = orjson.loads(body)
        records += doc["data"]
        pages += 1
        nxt = doc.get("meta", {}).get("paging", {}).get("next")
        if nxt:
            parts = urllib.parse.urlsplit(nxt)
            target = parts.path + ("?" + parts.query if parts.query else "")
        else:
            target = None
    return records, pages


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"SANITY CHECK FAILED: {what}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- the stack ------------------------------------------------------------------------------------

@dataclass
class Stack:
    tmp: Path
    backend_port: int = 0
    backend: Proc | None = None
    proxy: Proc | None = None
    proxy_port: int = 0
    admin_port: int = 0

    cache: Proc | None = None
    cache_port: int = 0
    chunked_port: int = 0  # the cache again, every page sent chunked (no Content-Length)

    def start_backend(self, scale: int, name: str = "backend") -> None:
        self.backend_port = free_port()
        self.backend = Proc(name, [str(BIN / "redaction-proxy"), "demo-backend", "--listen",
                                   f"127.0.0.1:{self.backend_port}", "--scale", str(scale)], self.tmp, CLIENT_CORE)
        wait_ready(self.backend_port, "/_demo/health", self.backend)
        self.cache_port = self.backend_port  # until start_cache: the proxy talks to the backend itself

    def start_cache(self) -> None:
        """nginx caching the demo backend's answers, on the backend's core: the upstream of every row."""
        self.cache_port, self.chunked_port = free_port(), free_port()
        self.cache = start_nginx(self.tmp, "cache", self.backend_port, self.cache_port, CLIENT_CORE,
                                 http_extra=CACHE_HTTP, location_extra=CACHE_LOCATION,
                                 extra_server=CHUNKED_SERVER.format(port=self.chunked_port,
                                                                    cache=CACHE_LOCATION.replace(*CHUNKED_KEY)))
        wait_ready(self.cache_port, "/_demo/health", self.cache)
        wait_ready(self.chunked_port, "/_demo/health", self.cache)

    def start_proxy(self, *extra: str, name: str = "proxy") -> Proc:
        if self.proxy is not None:
            self.proxy.stop()
        self.proxy_port, self.admin_port = free_port(), free_port()
        self.proxy = Proc(name, [
            str(BIN / "redaction-proxy"), "serve", "--upstream", f"http://127.0.0.1:{self.cache_port}",
            "--listen", f"127.0.0.1:{self.proxy_port}", "--admin-listen", f"127.0.0.1:{self.admin_port}",
            "--settings", str(SETTINGS), "--shutdown-grace", "2", *extra], self.tmp, SERVER_CORE)
        wait_ready(self.admin_port, "/readyz", self.proxy)
        return self.proxy

    def start_side_proxy(self, name: str, *extra: str, upstream: int = 0, core: str = SERVER_CORE) -> tuple[Proc, int]:
        """Another proxy beside the main one (its own ports and options), for rows that need them;
        its upstream is the cache unless `upstream` names another port."""
        port, admin = free_port(), free_port()
        proc = Proc(name, [
            str(BIN / "redaction-proxy"), "serve", "--upstream", f"http://127.0.0.1:{upstream or self.cache_port}",
            "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
            "--settings", str(SETTINGS), "--shutdown-grace", "2", *extra], self.tmp, core)
        wait_ready(admin, "/readyz", proc)
        return proc, port


def unpoliced_policies(tmp: Path) -> Path:
    """The bundled policies without activities.yaml: the same activities page, relayed as an endpoint
    no policy covers (the sentinel's case: its vendors include contacts hidden from token-2)."""
    out = tmp / "policies-no-activities"
    out.mkdir(exist_ok=True)
    for path in (ROOT / "policies").glob("*.yaml"):
        if path.name != "activities.yaml":
            shutil.copy(path, out / path.name)
    # A bundled family left out must be waived, with a reason, or the proxy refuses to start.
    (out / "waive-activities.yaml").write_text(
        "waive:\n  - {family: activities, reason: \"benchmark: the sentinel's unpoliced relay rows\"}\n")
    return out


def check_unpoliced(body: bytes, reference: bytes, limit: int, stubbed: bool, what: str) -> None:
    """The relayed page: the backend's records, with token-2's hidden vendors stubbed when `stubbed`."""
    data, expected = orjson.loads(body)["data"], orjson.loads(reference)["data"]
    check(len(data) == limit, f"{what}: {len(data)} records, expected {limit}")
    stubs = sum(1 for a in data if (a.get("vendor") or {}).get("redacted") is True)
    if stubbed:
        check(stubs > 0, f"{what}: no hidden vendor was stubbed by the sentinel")
        check(len(data) == len(expected) and all(a["id"] == b["id"] for a, b in zip(data, expected, strict=True)),
              f"{what}: records differ from the backend's")
    else:
        check(data == expected, f"{what}: the relayed records differ from the backend's")


# --- 1. throughput with wrk -----------------------------------------------------------------------

LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "%s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%%.0f duration_us=%%.0f p50_us=%%.0f p99_us=%%.0f connect=%%.0f " ..
    "read=%%.0f write=%%.0f status=%%.0f timeout=%%.0f\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class WrkResult:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_pct: float
    cpu_us_per_req: float
    note: str = ""


def wrk(tmp: Path, name: str, url: str, user: int, seconds: int, server: Proc, connections: int = 32) -> WrkResult:
    script = tmp / f"{name.replace(' ', '_')}.lua"
    script.write_text(LUA % f"Bearer token-{user}")
    base = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", "-s", str(script)]
    subprocess.run([*base, "-d1s", url], capture_output=True, timeout=60, check=True)  # warm-up
    before, started = cpu_ticks(server.pids()), time.monotonic()
    run = subprocess.run([*base, f"-d{seconds}s", url], capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - started
    used = (cpu_ticks(server.pids()) - before) / CLK_TCK
    match = re.search(r"BENCH (.*)", run.stdout)
    if run.returncode != 0 or match is None:
        raise SystemExit(f"wrk failed for {name}:\n{run.stdout}\n{run.stderr}")
    got = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    rps_line = re.search(r"Requests/sec:\s+([\d.]+)", run.stdout)
    rps = float(rps_line.group(1)) if rps_line else got["requests"] / (got["duration_us"] / 1e6)
    errors = int(sum(got[k] for k in ("connect", "read", "write", "status", "timeout")))
    return WrkResult(name, rps, got["p50_us"] / 1000, got["p99_us"] / 1000, errors, 100 * used / wall,
                     1e6 * used / max(got["requests"], 1))


def check_page(body: bytes, limit: int, restricted: bool, what: str) -> dict[str, Any]:
    doc = orjson.loads(body)
    data = doc["data"]
    check(len(data) == limit, f"{what}: {len(data)} records, expected {limit}")
    others = [a for a in data if (a.get("user") or {}).get("id") != RESTRICTED_USER]
    check(bool(others), f"{what}: no activity of another user on the page")
    if restricted:
        check(all("price" not in a and "total" not in a and a.get("redacted") is True for a in others),
              f"{what}: another user's price/total reached the output")
        check(any(a.get("quantity_redacted") is True and a.get("quantity") is None for a in others
                  if a["type"] == "TimeEntry"), f"{what}: no TimeEntry had its hours redacted")
    else:
        check(all("price" in a and a.get("quantity_redacted") is False for a in data),
              f"{what}: an all-visible caller's page was redacted")
    return doc  # type: ignore[no-any-return]


NGINX_CONF = """
worker_processes 1;
user root root;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/{name}-client;
    proxy_temp_path {tmp}/{name}-proxy;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
    {http_extra}
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            {location_extra}
        }}
    }}
    {extra_server}
}}
"""
RELAY_LOCATION = "proxy_buffering on; proxy_buffer_size 16k; proxy_buffers 64 8k;"
CACHE_HTTP = "proxy_cache_path {tmp}/cache-store keys_zone=pages:4m max_size=4g inactive=1h;"
CACHE_LOCATION = """
            proxy_set_header Host $http_host;  # paging links name the origin the client used
            proxy_cache pages;
            proxy_cache_key "$http_authorization|$http_x_demo_synthetic_records|$request_uri";
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 600s;
            proxy_max_temp_file_size 4096m;
            proxy_read_timeout 600s;
            proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;"""
# The same cache on a second port that sends every page chunked: sub_filter drops the Content-Length
# of what it filters (the pattern never matches, so the bytes are the same). Its entries are its own
# (CHUNKED_KEY): a page's paging links name the origin that filled it, and a proxy refuses links that
# do not name its upstream.
CHUNKED_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";  # sub_filter only filters what is not compressed
            {cache}
            sub_filter_types application/json;
            sub_filter "no-such-string-in-any-page" "";
            sub_filter_once on;
        }}
    }}"""
CHUNKED_KEY = ('proxy_cache_key "', 'proxy_cache_key "chunked|')


def start_nginx(tmp: Path, name: str, backend: int, port: int, core: str, *, http_extra: str = "",
                location_extra: str = "", extra_server: str = "") -> Proc:
    conf = tmp / f"{name}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, name=name, backend=backend, port=port,
                                      http_extra=http_extra.format(tmp=tmp), location_extra=location_extra,
                                      extra_server=extra_server))
    return Proc(name, ["nginx", "-p", f"{tmp}/", "-e", f"{tmp}/{name}-error.log", "-c", str(conf),
                       "-g", "daemon off;"], tmp, core)


def choose_page(be: int) -> tuple[str, int]:
    """The page of every row: measure bytes per record with many fields, pick the limit for ~100 KB."""
    probe_status, probe = get(be, f"/api/v4/activities.json?limit=50&fields={fields_query()}", auth(2))
    check(probe_status == 200, f"backend probe: status {probe_status}")
    per_record = len(probe) / len(orjson.loads(probe)["data"])
    limit = min(200, max(1, round(PAGE_BYTES / per_record)))
    return f"/api/v4/activities.json?limit={limit}&fields={fields_query()}", limit


def throughput(stack: Stack, seconds: int) -> tuple[list[WrkResult], dict[str, bool], int]:
    tmp = stack.tmp
    be, assert_be = stack.backend_port, stack.backend
    assert assert_be is not None and stack.cache is not None
    cp = stack.cache_port
    # Choose the page: measure bytes per record with many fields, then pick the limit for ~100 KB.
    page, limit = choose_page(be)
    proxy = stack.start_proxy()

    status, direct = get(be, page, auth(2))
    check(status == 200, f"backend page: status {status}")
    check_page(direct, limit, restricted=False, what="backend direct page")
    for user in (1, 2):  # fill the cache; it gives the backend's records (links name the cache's origin)
        status, cached = get(cp, page, auth(user))
        check(status == 200 and orjson.loads(cached)["data"] == orjson.loads(get(be, page, auth(user))[1])["data"],
              f"cache page token-{user}")
    status, body1 = get(stack.proxy_port, page, auth(1))
    check(status == 200, f"policed page token-1: status {status}")
    doc1 = check_page(body1, limit, restricted=False, what="policed page token-1")
    status, all1 = get(be, page, auth(1))
    check(doc1["data"] == orjson.loads(all1)["data"], "token-1 page through the proxy differs from the backend's")
    status, body2 = get(stack.proxy_port, page, auth(2))
    check(status == 200, f"policed page token-2: status {status}")
    check_page(body2, limit, restricted=True, what="policed page token-2")
    status, blob = get(stack.proxy_port, f"/_demo/blob?bytes={BLOB_BYTES}", auth(1))
    expected_blob = (bytes(range(256)) * (BLOB_BYTES // 256 + 1))[:BLOB_BYTES]
    check(status == 200 and blob == expected_blob, f"bare relay blob: status {status}, {len(blob)} bytes")
    print(f"page: {page}\n  {limit} records; backend page {len(direct)} B for token-2, {len(all1)} B for token-1; "
          f"through the proxy {len(body1)} B (token-1), {len(body2)} B (token-2); blob {len(blob)} B")

    nginx_port = free_port()
    nginx = start_nginx(tmp, "nginx", cp, nginx_port, SERVER_CORE, location_extra=RELAY_LOCATION)
    wait_ready(nginx_port, f"/_demo/blob?bytes={BLOB_BYTES}", nginx)
    status, nblob = get(nginx_port, f"/_demo/blob?bytes={BLOB_BYTES}")
    check(status == 200 and nblob == expected_blob, "nginx blob")

    mitm_port = free_port()
    addon = PEERS / "mitm_addon.py"
    mitm = Proc("mitmdump", [str(MITM_VENV / "bin" / "mitmdump"), "--mode", f"reverse:http://127.0.0.1:{cp}",
                             "--listen-host", "127.0.0.1", "--listen-port", str(mitm_port), "-s", str(addon),
                             "-q", "--set", f"confdir={tmp}/mitm-conf", "--set", "termlog_verbosity=error",
                             "--set", "flow_detail=0"], tmp, SERVER_CORE, env=PEERS_ENV)
    wait_ready(mitm_port, "/_demo/health", mitm)
    status, mbody = get(mitm_port, page, auth(2))
    check(status == 200, f"mitmproxy page: status {status}")
    check_page(mbody, limit, restricted=True, what="mitmproxy page token-2")

    # The sentinel on an endpoint no policy covers, for the restricted caller: off (streamed unparsed)
    # and redact (read whole, scanned, hidden vendors stubbed): the same page and cache as the others.
    unpoliced = unpoliced_policies(tmp)
    sentinel_off, off_port = stack.start_side_proxy("proxy-sentinel-off", "--policies", str(unpoliced),
                                                    "--sentinel", "off")
    sentinel_redact, redact_port = stack.start_side_proxy("proxy-sentinel-redact", "--policies", str(unpoliced),
                                                          "--sentinel", "redact")
    status, reference = get(cp, page, auth(2))
    check(status == 200, f"cache page token-2: status {status}")
    status, obody = get(off_port, page, auth(2))
    check(status == 200, f"unpoliced page, sentinel off: status {status}")
    check_unpoliced(obody, reference, limit, stubbed=False, what="unpoliced page, sentinel off")
    status, rbody = get(redact_port, page, auth(2))
    check(status == 200, f"unpoliced page, sentinel redact: status {status}")
    check_unpoliced(rbody, reference, limit, stubbed=True, what="unpoliced page, sentinel redact")

    floor_port = free_port()
    floor = Proc("floor", [str(BIN / "python"), "-m", "peers.floor_relay", f"http://127.0.0.1:{cp}", str(floor_port)],
                 tmp, SERVER_CORE, env=PEERS_ENV)
    wait_ready(floor_port, "/_demo/health", floor)
    status, fbody = get(floor_port, page, auth(2))
    check(status == 200, f"floor relay page: status {status}")
    check_page(fbody, limit, restricted=True, what="floor relay page token-2")

    # Issue 14's rows: the restricted page through the pure-Python path (--native off; the main proxy
    # runs --native auto, the default), from a backend sending it chunked, and on 1 and 2 workers.
    native_off, native_off_port = stack.start_side_proxy("proxy-native-off", "--native", "off")
    status, nbody = get(native_off_port, page, auth(2))
    check(status == 200, f"--native off page: status {status}")
    check_page(nbody, limit, restricted=True, what="--native off page token-2")
    check_chunked_backend(stack.chunked_port, page, reference)
    chunked, chunked_port = stack.start_side_proxy("proxy-chunked-backend", upstream=stack.chunked_port)
    status, cbody = get(chunked_port, page, auth(2))
    check(status == 200, f"chunked backend page: status {status}")
    check_page(cbody, limit, restricted=True, what="chunked backend page token-2")
    workers = serve_has_workers()

    url = "http://127.0.0.1:{}{}".format
    rows = [
        wrk(tmp, "demo backend direct", url(be, page), 2, seconds, assert_be),
        wrk(tmp, "backend: nginx cache", url(cp, page), 2, seconds, stack.cache),
        wrk(tmp, "bare relay (proxy)", url(stack.proxy_port, f"/_demo/blob?bytes={BLOB_BYTES}"), 1, seconds, proxy),
        wrk(tmp, "nginx relay", url(nginx_port, f"/_demo/blob?bytes={BLOB_BYTES}"), 1, seconds, nginx),
        wrk(tmp, "policed, token-1 (all)", url(stack.proxy_port, page), 1, seconds, proxy),
        wrk(tmp, "policed, token-2 (restr.)", url(stack.proxy_port, page), 2, seconds, proxy),
        wrk(tmp, "t-2 restr., --native off", url(native_off_port, page), 2, seconds, native_off),
        wrk(tmp, "t-2 restr., chunked backend", url(chunked_port, page), 2, seconds, chunked),
        wrk(tmp, "mitmproxy, token-2", url(mitm_port, page), 2, seconds, mitm),
        wrk(tmp, "floor: aiohttp+orjson, t-2", url(floor_port, page), 2, seconds, floor),
        wrk(tmp, "unpol. t-2, sentinel off", url(off_port, page), 2, seconds, sentinel_off),
        wrk(tmp, "unpol. t-2, sentinel redact", url(redact_port, page), 2, seconds, sentinel_redact),
    ]
    sentinel_off.stop()
    sentinel_redact.stop()
    native_off.stop()
    chunked.stop()
    rows += workers_rows(stack, page, limit, seconds, workers)
    nginx.stop()
    mitm.stop()
    floor.stop()
    # The cost of shadowing: the same proxy with a candidate deciding beside the live set on every record.
    plain = {user: orjson.loads(get(stack.proxy_port, page, auth(user))[1])["data"] for user in (1, 2)}
    shadow = start_shadow_proxy(stack, page, plain)
    rows += [
        wrk(tmp, "shadow, token-1 (cand.)", url(stack.proxy_port, page), 1, seconds, shadow),
        wrk(tmp, "shadow, token-2 (restr.)", url(stack.proxy_port, page), 2, seconds, shadow),
    ]
    shadow.stop()
    proxy.stop()
    stack.proxy = None
    by = {r.name: r for r in rows}
    bare, restricted, peer = by["bare relay (proxy)"], by["policed, token-2 (restr.)"], by["mitmproxy, token-2"]
    print(f"\n1. Throughput, wrk -t1 -c32 -d{seconds}s (server CPU: the process on core "
          f"{SERVER_CORE}, or the backend for the first two rows). Every server below the first row "
          "talks to the nginx cache.")
    head = (f"{'row':<27}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'x bare':>8}{'x mitm':>8}"
            f"{'srv CPU%':>9}{'CPU us/req':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if r.note.startswith("n/a"):
            print(f"{r.name:<27}  {r.note}")
            continue
        vs_peer = f"{r.rps / peer.rps:.2f}" if r is restricted else ""
        flag = "" if r.errors == 0 else "  <- FLAG: errors"
        print(f"{r.name:<27}{r.rps:>9.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}{r.errors:>8}{r.rps / bare.rps:>8.2f}"
              f"{vs_peer:>8}{r.cpu_pct:>9.0f}{r.cpu_us_per_req:>11.0f}{flag}")
    visible = by["policed, token-1 (all)"]
    targets = {  # issue 14's
        f"policed 100 KB page, restricted >= 0.55x bare relay ({restricted.rps / bare.rps:.2f}x)":
            restricted.rps >= 0.55 * bare.rps,
        f"policed 100 KB page, all-visible >= 0.8x bare relay ({visible.rps / bare.rps:.2f}x)":
            visible.rps >= 0.8 * bare.rps,
        f"policed 100 KB page, restricted >= 3x mitmproxy ({restricted.rps / peer.rps:.2f}x)":
            restricted.rps >= 3 * peer.rps,
        f"wrk rows without errors ({sum(r.errors for r in rows)} errors)": all(r.errors == 0 for r in rows),
    }
    print("  (floor: a hard-coded redaction relay with nothing else, to show what parsing and re-encoding "
          "alone cost;\n   unpol.: the same page with activities.yaml removed, relayed as an endpoint no policy "
          "covers, the sentinel off or redacting token-2's hidden vendors;\n   policed, token-2 (restr.) runs "
          "--native auto (the default: the compiled scanner when it loads), --native off the pure-Python path;\n"
          "   chunked backend: the same cached page sent without Content-Length; N worker(s): serve --workers N "
          "with the proxy\n   on both cores, wrk and the cache still on core 0)")
    for name, ok in targets.items():
        print(f"  [{verdict(ok)}] {name}")
    return rows, targets, limit


def check_chunked_backend(port: int, page: str, reference: bytes) -> None:
    """The chunked port sends the cache's bytes without Content-Length, compression asked for or not."""
    for extra in ({}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", page, headers={**auth(2), **extra})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        check(response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
              and response.getheader("Content-Length") is None and response.getheader("Content-Encoding") is None,
              f"chunked backend {extra}: status {response.status}, headers {response.getheaders()}")
        check(orjson.loads(body)["data"] == orjson.loads(reference)["data"], "chunked backend: records differ")


def serve_has_workers() -> bool:
    """Whether this checkout's `serve` has --workers (issue 14, added on its own branch)."""
    done = subprocess.run([str(BIN / "redaction-proxy"), "serve", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    return "--workers" in done.stdout


def workers_rows(stack: Stack, page: str, limit: int, seconds: int, available: bool) -> list[WrkResult]:
    """The restricted row on 1 and 2 workers, the proxy free to use both cores (a second worker pinned
    to the one core of the other rows would only share it)."""
    names = ("t-2 restr., 1 worker", "t-2 restr., 2 workers")
    if not available:
        return [WrkResult(name, 0, 0, 0, 0, 0, 0, "n/a: --workers not available (serve --help does not list it)")
                for name in names]
    rows = []
    for name, count in zip(names, ("1", "2"), strict=True):
        proc, port = stack.start_side_proxy(f"proxy-workers-{count}", "--workers", count, core=BOTH_CORES)
        for _ in range(2 * int(count)):
            status, body = get(port, page, auth(2))
            check(status == 200, f"{name}: status {status}")
            check_page(body, limit, restricted=True, what=f"{name} page token-2")
        rows.append(wrk(stack.tmp, name, f"http://127.0.0.1:{port}{page}", 2, seconds, proc))
        proc.stop()
    return rows


SHADOW_USER_1 = {"activity_hours_visibility": "own_and_responsible_attorney", "billing_rate_visibility": "none"}


def start_shadow_proxy(stack: Stack, page: str, plain: dict[int, Any]) -> Proc:
    """The proxy with --shadow-settings: the candidate restricts token-1 too (hours and rates), so it
    decides on every record of token-1's page (which the live set passes as the backend's bytes) and
    token-2's. Checks the answers are the plain proxy's and that the candidate's differences are counted."""
    import yaml

    candidate = yaml.safe_load(SETTINGS.read_text())
    candidate["users"]["1"] = SHADOW_USER_1
    path = stack.tmp / "shadow-settings.yaml"
    path.write_text(yaml.safe_dump(candidate))
    proxy = stack.start_proxy("--shadow-settings", str(path), name="proxy-shadow")
    for user in (1, 2):
        status, body = get(stack.proxy_port, page, auth(user))
        # Redacted records carry the proxy's own etags, keyed per process: compared without them.
        check(status == 200 and _no_etags(orjson.loads(body)["data"]) == _no_etags(plain[user]),
              f"shadow proxy page token-{user} differs from the plain proxy's")
    _, metrics = get(stack.admin_port, "/metrics")
    check(b'redaction_proxy_shadow_differences_total{kind="would_redact_only_shadow"' in metrics,
          "the shadow proxy counted no difference for token-1")
    return proxy


# --- 1c. instructions per request, counted by callgrind ----------------------------------------------

CALLGRIND_TIMEOUT = 900


def callgrind_proxy(stack: Stack, name: str, requests: list[tuple[str, int]], *extra: str) -> int:
    """The user-space instructions of a proxy started under callgrind that answers `requests` (target,
    user) one after another on one connection and is then stopped: start-up and shutdown included."""
    port, admin = free_port(), free_port()
    proc = Proc(name, [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(BIN / "python"),
        str(BIN / "redaction-proxy"), "serve", "--upstream", f"http://127.0.0.1:{stack.cache_port}",
        "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}", "--settings", str(SETTINGS),
        # Nothing on a timer: no file watching, no facts expiring during the slow run.
        "--shutdown-grace", "2", "--watch-interval", "0", "--facts-ttl", "86400", *extra],
        stack.tmp, SERVER_CORE, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        wait_ready(admin, "/readyz", proc, timeout=CALLGRIND_TIMEOUT)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CALLGRIND_TIMEOUT)
        try:
            for target, user in requests:
                conn.request("GET", target, headers=auth(user))
                response = conn.getresponse()
                response.read()
                check(response.status == 200, f"{name}: {target} token-{user}: status {response.status}")
        finally:
            conn.close()
        proc.popen.send_signal(signal.SIGTERM)
        proc.popen.wait(CALLGRIND_TIMEOUT)
    finally:
        proc.stop()
    found = re.findall(r"Collected : (\d+)", proc.log.read_text(errors="replace"))
    check(len(found) == 1, f"{name}: no callgrind total in {proc.log}:\n{proc.tail()}")
    return int(found[0])


def instructions(stack: Stack, page: str, n: int) -> dict[str, float]:
    """Instructions per request for the relay, all-visible and restricted rows (and the restricted one
    on the pure-Python path), end to end in the proxy process: a base run answers n requests of each
    row, each row's run the same and n more of its own; (row run - base) / n. Start-up, the first
    (cold) facts crawl, imports and shutdown are in both and cancel out."""
    relay = f"/_demo/blob?bytes={BLOB_BYTES}"
    rows: dict[str, tuple[tuple[str, int], tuple[str, ...]]] = {
        "bare relay (proxy)": ((relay, 1), ()),
        "policed, token-1 (all)": ((page, 1), ()),
        "policed, token-2 (restr.)": ((page, 2), ()),
        "t-2 restr., --native off": ((page, 2), ("--native", "off")),
    }
    # The cache filled for every target the proxy asks (the page's augmented fields included).
    stack.start_proxy(name="proxy-instructions-fill")
    for target, user in {request for request, _ in rows.values()}:
        check(get(stack.proxy_port, target, auth(user))[0] == 200, f"cache fill {target} token-{user}")
    assert stack.proxy is not None
    stack.proxy.stop()
    stack.proxy = None
    base_requests = [request for request, _ in rows.values() for _ in range(n)]
    bases: dict[tuple[str, ...], int] = {}
    per_request: dict[str, float] = {}
    print(f"\n1c. Instructions per request (callgrind, the proxy process; {n} vs {2 * n} requests of the row, "
          "PYTHONHASHSEED=0)")
    for name, (request, extra) in rows.items():
        if extra not in bases:
            bases[extra] = callgrind_proxy(stack, f"callgrind-base{'-'.join(('', *extra))}", base_requests, *extra)
        more = callgrind_proxy(stack, f"callgrind-{name.split(',')[0].split()[0]}-{len(per_request)}",
                               base_requests + [request] * n, *extra)
        per_request[name] = (more - bases[extra]) / n
    bare = per_request["bare relay (proxy)"]
    head = f"{'row':<27}{'instructions/request':>22}{'x bare':>8}"
    print(head)
    print("-" * len(head))
    for name, count in per_request.items():
        print(f"{name:<27}{count / 1e6:>20.2f} M{count / bare:>8.2f}")
    print("  (user-space instructions of the proxy process, start-up and the cold facts crawl cancelled out; "
          "x bare: how many\n   relay requests' worth of instructions one request of the row costs)")
    return per_request


# --- 2. big bodies --------------------------------------------------------------------------------

@dataclass
class Sampler:
    pid: int
    peak_kb: int = 0
    stop_flag: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            self.stop_flag.wait(0.05)


MARK = b'"quantity_redacted":true'


@dataclass
class Transfer:
    status: int
    nbytes: int
    seconds: float
    head: bytes
    tail: bytes
    marks: int
    body: bytes | None


def stream(port: int, target: str, headers: dict[str, str], keep: bool) -> Transfer:
    """GET with a streaming reader: count bytes (and redaction marks), keep only head and tail."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BIG_TIMEOUT)
    started = time.perf_counter()
    conn.request("GET", target, headers=headers)
    response = conn.getresponse()
    nbytes = marks = 0
    head = b""
    last = b""
    kept: list[bytes] = []
    while chunk := response.read(1 << 20):
        if len(head) < 4096:
            head += chunk[: 4096 - len(head)]
        # A mark across the boundary is counted once: the carried tail is one byte short of a mark.
        marks += (last[-(len(MARK) - 1):] + chunk[: len(MARK) - 1]).count(MARK) + chunk.count(MARK)
        last = chunk
        nbytes += len(chunk)
        if keep:
            kept.append(chunk)
    seconds = time.perf_counter() - started
    conn.close()
    return Transfer(response.status, nbytes, seconds, head, last[-4096:], marks, b"".join(kept) if keep else None)


@dataclass
class BigRow:
    name: str
    nbytes: int
    mbps: float
    backend_mbps: float | None
    peak_rss_mb: float
    hwm_mb: float
    cpu_pct: float
    targets: list[tuple[str, bool]]


def big_row(stack: Stack, name: str, target: str, headers: dict[str, str], expect: Callable[[Transfer], None],
            targets: Callable[[float, float], list[tuple[str, bool]]], backend_direct: bool) -> BigRow:
    backend_mbps = None
    # Fill the cache at the demo backend's own pace, with the target as the client sends it and as
    # the proxy forwards it (augmented fields make it another entry), then let the writeback finish
    # so that it does not compete with the runs measured below.
    stack.start_proxy("--request-timeout", str(BIG_TIMEOUT), name=f"fill-{name.split()[0]}")
    fill = stream(stack.proxy_port, target, headers, keep=False)
    check(fill.status == 200, f"{name}: cache fill through the proxy: status {fill.status}")
    if backend_direct:
        fill = stream(stack.cache_port, target, headers, keep=False)
        check(fill.status == 200, f"{name}: cache fill status {fill.status}")
    os.sync()
    if backend_direct:
        direct = stream(stack.cache_port, target, headers, keep=False)
        check(direct.status == 200 and direct.nbytes == fill.nbytes, f"{name}: cache status {direct.status}")
        backend_mbps = direct.nbytes / direct.seconds / 1e6
    proxy = stack.start_proxy("--request-timeout", str(BIG_TIMEOUT), name=f"proxy-{name.split()[0]}")
    sampler = Sampler(proxy.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    ticks = cpu_ticks([proxy.pid])
    result = stream(stack.proxy_port, target, headers, keep=False)
    used = (cpu_ticks([proxy.pid]) - ticks) / CLK_TCK
    sampler.stop_flag.set()
    thread.join()
    hwm = status_kb(proxy.pid, "VmHWM")
    proxy.stop()
    stack.proxy = None
    check(result.status == 200, f"{name}: status {result.status}")
    expect(result)
    mbps = result.nbytes / result.seconds / 1e6
    peak = sampler.peak_kb / 1024
    return BigRow(name, result.nbytes, mbps, backend_mbps, peak, hwm / 1024, 100 * used / result.seconds,
                  targets(mbps, max(peak, hwm / 1024)))


def big_bodies(stack: Stack, quick: bool) -> tuple[list[BigRow], float]:
    headers = {**auth(2), "Accept-Encoding": "identity"}
    target = f"/api/v4/activities.json?fields={fields_query()}"
    sample = stream(stack.backend_port, target, {**headers, "X-Demo-Synthetic-Records": "2000"}, keep=True)
    check(sample.status == 200 and sample.body is not None, "synthetic sample")
    assert sample.body is not None
    per_record = len(sample.body) / 2000
    print(f"\nsynthetic TimeEntry records from the backend for token-2: {per_record:.0f} bytes each")

    def policed(size: int) -> tuple[str, dict[str, str], Callable[[Transfer], None]]:
        n = max(1, round(size / per_record))

        def expect(t: Transfer) -> None:
            check(t.head.startswith(b'{"data":[{'), "policed body does not start with {\"data\":[{")
            check(t.tail.endswith(b',"meta":{"paging":{},"records":' + str(n).encode() + b"}}"),
                  f"policed body does not end with the meta of {n} records")
            check(t.marks > n // 10, f"only {t.marks} of {n} TimeEntries had hours redacted")

        return target, {**headers, "X-Demo-Synthetic-Records": str(n)}, expect

    def blob_expect(size: int) -> Callable[[Transfer], None]:
        def expect(t: Transfer) -> None:
            check(t.nbytes == size, f"blob: {t.nbytes} bytes, expected {size}")
            check(t.head == bytes(range(256)) * 16, "blob content")
        return expect

    gb = 1_000_000_000

    def no_targets(mbps: float, rss: float) -> list[tuple[str, bool]]:
        return []

    def gb_policed(mbps: float, rss: float) -> list[tuple[str, bool]]:
        return [(f"peak RSS <= 100 MB ({rss:.0f})", rss <= 100), (f">= 60 MB/s ({mbps:.0f})", mbps >= 60)]

    def gb_blob(mbps: float, rss: float) -> list[tuple[str, bool]]:
        return [(f"peak RSS <= 64 MB ({rss:.0f})", rss <= 64)]

    rows = []
    for label, size, goal in (("1 MB", 1_000_000, no_targets), ("50 MB", 50_000_000, no_targets),
                              ("1 GB", gb, gb_policed)):
        tgt, hdrs, expect = policed(size)
        rows.append(big_row(stack, f"{label} policed (token-2)", tgt, hdrs, expect, goal, backend_direct=True))
    rows.append(big_row(stack, "1 GB unpoliced blob", f"/_demo/blob?bytes={gb}", headers, blob_expect(gb),
                        gb_blob, backend_direct=True))
    print("\n2. Big bodies through the proxy (streaming client; proxy restarted per row; RSS sampled every 50 ms)")
    head = (f"{'row':<26}{'bytes out':>14}{'MB/s':>8}{'cache MB/s':>14}{'peak RSS MB':>13}{'VmHWM MB':>10}"
            f"{'proxy CPU%':>11}  targets")
    print(head)
    print("-" * len(head))
    for r in rows:
        goals = ", ".join(f"{n} {verdict(ok)}" for n, ok in r.targets)
        backend = f"{r.backend_mbps:.0f}" if r.backend_mbps is not None else "-"
        print(f"{r.name:<26}{r.nbytes:>14,}{r.mbps:>8.1f}{backend:>14}{r.peak_rss_mb:>13.1f}{r.hwm_mb:>10.1f}"
              f"{r.cpu_pct:>11.0f}  {goals}")
    return rows, per_record


# --- 2b. the JSON pipeline alone, in process --------------------------------------------------------

def pipeline(stack: Stack, per_record: float, megabytes: float) -> tuple[float, float, int]:
    from proxy import native
    from proxy.body import IndexStream, Judging
    from proxy.decide import make_plan
    from proxy.etag import Sealer
    from proxy.facts.settings import load_settings
    from proxy.facts.viewer import Viewer
    from proxy.memory import keep_heap_slack
    from proxy.policy.fields import parse_fields, render_fields
    from proxy.policy.load import load_policies

    keep_heap_slack()  # as `serve` does: this process runs the proxy's pipeline, and orjson beside it
    routes = {r.template: r for r in load_policies(ROOT / "policies").routes}
    be = stack.backend_port
    status, who = get(be, "/api/v4/users/who_am_i.json?fields=id,roles", auth(RESTRICTED_USER))
    check(status == 200, "who_am_i")
    roles = tuple(orjson.loads(who)["data"]["roles"])
    user_settings = load_settings(SETTINGS).for_caller(RESTRICTED_USER, roles)
    matters, _ = crawl(be, RESTRICTED_USER, "/api/v4/matters.json",
                       "fields=id,responsible_attorney%7Bid%7D&limit=200&order=id(asc)")
    responsible = frozenset(m["id"] for m in matters
                            if (m.get("responsible_attorney") or {}).get("id") == RESTRICTED_USER)
    viewer = Viewer(RESTRICTED_USER, roles, user_settings, frozenset(), responsible)
    plan = make_plan(routes["/activities"], viewer.settings, parse_fields(FIELDS), index=True)
    bound = plan.bind(viewer)
    upstream_fields = render_fields(plan.upstream_selection) if plan.upstream_selection is not None else FIELDS
    n = round(megabytes * 1e6 / per_record)
    body_t = stream(be, f"/api/v4/activities.json?fields={fields_query(upstream_fields)}",
                    {**auth(RESTRICTED_USER), "X-Demo-Synthetic-Records": str(n)}, keep=True)
    assert body_t.body is not None
    body = body_t.body
    chunk = 64 * 1024

    seal = Sealer.of(b"k" * 32, "bench", "v1").record_tag
    scanner = native.scanner(bound, apply=True, watched=False, seal=seal)

    def streamed(compiled: bool) -> Callable[[], int]:
        def run() -> int:
            """What the proxy's streaming path does per chunk (proxy.body.IndexStream: split, judge each
            record, join the chunk's output for one write). The written bytes are counted and dropped,
            as a socket would."""
            judging = Judging(bound, True, lambda decisions: None, seal, native=scanner if compiled else None)
            stream = IndexStream(judging, max_element=1 << 20)
            sent = 0
            view = memoryview(body)
            for start in range(0, len(body), chunk):
                sent += len(b",".join(stream.feed(bytes(view[start: start + chunk]))))
            stream.finish()
            return sent
        return run

    run_pipeline, run_pure = streamed(scanner is not None), streamed(False)

    def run_orjson() -> int:
        return len(orjson.dumps(orjson.loads(body)))

    check(len(orjson.loads(body)["data"]) == n, "pipeline body record count")
    out_len = run_pipeline()
    check(0 < out_len < len(body), "pipeline output size")

    def best(fn: Callable[[], int], runs: int = 3) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    t_pipe, t_pure, t_orjson = best(run_pipeline), best(run_pure), best(run_orjson)
    mb = len(body) / 1e6
    print(f"\n2b. JSON pipeline in process (IndexStream: splitter + each record judged, restricted viewer, "
          f"{len(plan.bindings)} bindings), {mb:.1f} MB body, {n} records, best of 3")
    print(f"  proxy pipeline, 64 KB chunks: {mb / t_pipe:7.1f} MB/s ({t_pipe * 1000:.0f} ms; "
          f"{'the compiled scanner' if scanner is not None else 'pure: the scanner is not built'})")
    print(f"  the same, --native off      : {mb / t_pure:7.1f} MB/s ({t_pure * 1000:.0f} ms)")
    print(f"  orjson.loads + orjson.dumps : {mb / t_orjson:7.1f} MB/s ({t_orjson * 1000:.0f} ms)")
    ratio = t_orjson / t_pipe
    print(f"  [{verdict(ratio >= 1.0)}] pipeline >= 1.0x orjson loads+dumps ({ratio:.2f}x)")
    return mb / t_pipe, mb / t_orjson, n


# --- 3. cold facts ------------------------------------------------------------------------------------

def facts_crawl(tmp: Path, limit: int) -> bool:
    import aiohttp

    stack = Stack(tmp)
    stack.start_backend(50, name="backend-scale50")
    be = stack.backend_port
    assert stack.backend is not None
    matters_q = ("fields=id,client%7Bid%7D,responsible_attorney%7Bid%7D,custom_field_values%7Bfield_type,contact%7D"
                 "&limit=200&order=id(asc)")
    status, all_matters_body = get(be, "/api/v4/matters.json?fields=id&limit=1", auth(1))
    total = orjson.loads(all_matters_body)["meta"]["records"]
    visible, matter_pages = crawl(be, RESTRICTED_USER, "/api/v4/matters.json", matters_q)
    _, rel_pages = crawl(be, RESTRICTED_USER, "/api/v4/relationships.json",
                         "fields=id,contact%7Bid%7D,matter%7Bid%7D&limit=200&order=id(asc)")
    _, created_pages = crawl(be, RESTRICTED_USER, "/api/v4/contacts.json",
                             f"fields=id&creator_id={RESTRICTED_USER}&limit=200&order=id(asc)")
    proxy = stack.start_proxy()
    page = f"/api/v4/activities.json?limit={limit}&fields={fields_query()}"
    status, _ = get(be, "/_demo/requests", method="DELETE")
    check(status == 204, "DELETE /_demo/requests")

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:
            async def one() -> int:
                async with session.get(f"http://127.0.0.1:{stack.proxy_port}{page}",
                                       headers=auth(RESTRICTED_USER)) as r:
                    await r.read()
                    return r.status
            return list(await asyncio.wait_for(asyncio.gather(*(one() for _ in range(50))), 120))

    started = time.monotonic()
    statuses = asyncio.run(burst())
    elapsed = time.monotonic() - started
    status, recorded = get(be, "/_demo/requests")
    paths = [r["path_qs"] for r in orjson.loads(recorded)]
    counts = {name: sum(1 for p in paths if p.startswith(f"/api/v4/{name}"))
              for name in ("users/who_am_i", "matters", "relationships", "contacts", "activities")}
    proxy.stop()
    stack.backend.stop()
    ok_status = statuses.count(200)
    print(f"\n3. Cold caller, 50 concurrent requests (backend --scale 50: {total} matters; "
          f"user {RESTRICTED_USER} sees {len(visible)})")
    print(f"  responses: {ok_status}/50 status 200 in {elapsed:.2f}s; backend got {len(paths)} requests, "
          f"{counts['activities']} of them activities pages")
    print(f"  facts crawls: who_am_i={counts['users/who_am_i']} matters_pages={counts['matters']} "
          f"relationships_pages={counts['relationships']} (created_contacts_pages={counts['contacts']})")
    print(f"  one crawl is: who_am_i=1 matters_pages={matter_pages} relationships_pages={rel_pages} "
          f"(created_contacts_pages={created_pages})")
    one = (counts["users/who_am_i"] == 1 and counts["matters"] == matter_pages
           and counts["relationships"] == rel_pages and counts["contacts"] == created_pages and ok_status == 50)
    print(f"  [{verdict(one)}] one facts crawl for 50 concurrent cold requests")
    return one


# --- main ---------------------------------------------------------------------------------------------

def preflight() -> None:
    missing = [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]
    if not (MITM_VENV / "bin" / "mitmdump").exists():
        missing.append(f"{MITM_VENV}/bin/mitmdump")
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (see this script's docstring)")
    if os.cpu_count() is None or (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 cores")


def busy_share(seconds: float = 1.0) -> float:
    """The share of all cores busy over `seconds` (before anything of ours runs: other people's load)."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def _no_etags(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_etags(v) for k, v in value.items() if k != "etag"}
    if isinstance(value, list):
        return [_no_etags(v) for v in value]
    return value


def smoke_shadow() -> int:
    """The shadow row's server, started and checked against the plain proxy, without measuring anything."""
    with tempfile.TemporaryDirectory(prefix="redaction-bench-") as tmpdir:
        try:
            stack = Stack(Path(tmpdir))
            stack.start_backend(1)
            page = f"/api/v4/activities.json?limit=50&fields={fields_query()}"
            stack.start_proxy()
            plain = {user: orjson.loads(get(stack.proxy_port, page, auth(user))[1])["data"] for user in (1, 2)}
            start_shadow_proxy(stack, page, plain)
            print("shadow row: the proxy starts, answers as the plain one and counts the candidate's differences")
        finally:
            stop_all()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs instead of 10 s")
    parser.add_argument("--seconds", type=int, default=0, help="wrk runs of this many seconds (overrides --quick)")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only the throughput table (1) and, with --instructions, 1c: no big bodies, "
                             "pipeline or cold facts")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions per request with callgrind (1c: several minutes)")
    parser.add_argument("--instructions-only", action="store_true",
                        help="only 1c: the demo backend, the cache and the proxy under callgrind (no wrk, "
                             "no mitmproxy)")
    parser.add_argument("--instructions-requests", type=int, default=10, metavar="N",
                        help="1c counts N and 2N requests of each row (default 10)")
    parser.add_argument("--smoke-shadow", action="store_true",
                        help="only start the demo backend and the shadow row's proxy, check its answers, stop "
                             "(no wrk, no nginx: seconds, not minutes)")
    args = parser.parse_args()
    if args.smoke_shadow:
        return smoke_shadow()
    preflight()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("missing: valgrind (for --instructions)")
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    seconds = args.seconds or (3 if args.quick else 10)
    if args.instructions_only:
        return instructions_only(args.instructions_requests)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    targets: dict[str, bool] = {}
    def first_line(*argv: str) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return ((out.stdout or out.stderr).splitlines() or ["?"])[0].split(" [")[0].strip()

    print(f"python {sys.version.split()[0]}, orjson {orjson.__version__}, {first_line('nginx', '-v')}, "
          f"{first_line('wrk', '-v')}, {first_line(str(MITM_VENV / 'bin' / 'mitmdump'), '--version')}; "
          f"cores: wrk/backend/client {CLIENT_CORE}, server under test {SERVER_CORE}")
    noise = busy_share()
    if noise > 0.05:
        print(f"WARNING: the machine is {100 * noise:.0f}% busy before the benchmark starts; figures will be noisy")
    with tempfile.TemporaryDirectory(prefix="redaction-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            stack = Stack(tmp)
            stack.start_backend(1)
            stack.start_cache()
            _, wrk_targets, limit = throughput(stack, seconds)
            targets.update(wrk_targets)
            if args.instructions:
                instructions(stack, choose_page(stack.backend_port)[0], args.instructions_requests)
            if args.throughput_only:
                return report(targets, started)
            rows, per_record = big_bodies(stack, args.quick)
            for row in rows:
                for name, ok in row.targets:
                    targets[f"{row.name}: {name}"] = ok
            pipe, plain, _ = pipeline(stack, per_record, 50.0)
            targets[f"pipeline >= 1.0x orjson loads+dumps ({pipe / plain:.2f}x)"] = pipe >= plain
            assert stack.backend is not None and stack.cache is not None
            stack.cache.stop()
            stack.backend.stop()
            targets["one facts crawl for 50 concurrent cold requests"] = facts_crawl(tmp, limit)
        finally:
            stop_all()
    return report(targets, started)


def report(targets: dict[str, bool], started: float) -> int:
    print(f"\nTargets ({time.monotonic() - started:.0f} s in all):")
    for name, ok in targets.items():
        print(f"  [{verdict(ok)}] {name}")
    return 0


def instructions_only(n: int) -> int:
    missing = [tool for tool in ("valgrind", "nginx", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}")
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    with tempfile.TemporaryDirectory(prefix="redaction-bench-") as tmpdir:
        try:
            stack = Stack(Path(tmpdir))
            stack.start_backend(1)
            stack.start_cache()
            instructions(stack, choose_page(stack.backend_port)[0], n)
        finally:
            stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
