"""The admin listener of `serve --workers N`: one address for every worker, served by the supervisor.

Each worker serves its own admin app on a private Unix socket; this app asks them. /metrics is merged
from the workers' metric files (prometheus-client's multiprocess mode), /readyz is ready only when every
worker is, /decisions/{id} asks each worker until one knows the request, /report lists each worker's
report (they are not summed: distinct users cannot be), /policies is the first worker's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from yarl import URL

from .admin import add_routes

ASK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Seat:
    """A worker as the admin listener sees it: its number, its process id and its admin socket."""

    index: int
    pid: int
    socket: str


class Pool(Protocol):
    """What the supervisor (proxy/workers.py) tells this app."""

    @property
    def draining(self) -> bool: ...

    @property
    def restarts(self) -> int: ...

    @property
    def metrics_dir(self) -> str: ...

    def seats(self) -> Sequence[Seat]: ...


POOL = web.AppKey("pool", Pool)


@dataclass(frozen=True, slots=True)
class Answer:
    seat: Seat
    status: int | None  # None: the worker did not answer
    body: bytes = b""
    content_type: str = "application/json"

    def json(self) -> Any:
        import orjson

        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None


async def ask(seat: Seat, method: str, path: str) -> Answer:
    """`path` percent-encoded. A worker that does not answer (restarting, stopped) is an Answer too."""
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=seat.socket),
                                         timeout=aiohttp.ClientTimeout(total=ASK_SECONDS)) as http, \
                http.request(method, URL(f"http://worker{path}", encoded=True)) as r:
            return Answer(seat, r.status, await r.read(), r.content_type)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return Answer(seat, None)


async def ask_all(request: web.Request, method: str, path: str) -> list[Answer]:
    return list(await asyncio.gather(*(ask(s, method, path) for s in request.app[POOL].seats())))


def _who(answer: Answer) -> dict[str, Any]:
    return {"worker": answer.seat.index, "pid": answer.seat.pid, "status": answer.status}


async def healthz(request: web.Request) -> web.Response:
    """Alive while the supervisor is (it restarts a dead worker, and exits when it cannot)."""
    answers = await ask_all(request, "GET", "/healthz")
    return web.json_response({"status": "ok", "workers": [_who(a) for a in answers]})


async def readyz(request: web.Request) -> web.Response:
    """Ready when every worker is: one draining, unready or not answering (restarting) makes it 503."""
    pool = request.app[POOL]
    answers = await ask_all(request, "GET", "/readyz")
    workers = [{**_who(a), **{k: v for k, v in (a.json() or {}).items() if k == "status"}} for a in answers]
    if pool.draining:
        return web.json_response({"status": "draining", "workers": workers}, status=503)
    ready = bool(answers) and all(a.status == 200 for a in answers) and len(answers) == len(pool.seats())
    first = answers[0].json() if answers and isinstance(answers[0].json(), dict) else {}
    body = {**first, "status": "ready" if ready else "not ready", "workers": workers}
    return web.json_response(body, status=200 if ready else 503)


class _Supervision:
    """The supervisor's own series: how many workers run, how many were restarted."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("redaction_proxy_workers", "Worker processes running (serve --workers)",
                                value=len(self._pool.seats()))
        yield CounterMetricFamily("redaction_proxy_worker_restarts", "Workers restarted after dying",
                                  value=self._pool.restarts)


async def metrics(request: web.Request) -> web.Response:
    """Every worker's series merged from their files: counters and histograms summed (a dead worker's
    counts kept), gauges by their multiprocess mode (proxy/metrics.py)."""
    pool = request.app[POOL]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=pool.metrics_dir)  # type: ignore[no-untyped-call]
    registry.register(_Supervision(pool))
    body = await asyncio.to_thread(generate_latest, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _passed(answer: Answer) -> web.Response:
    if answer.status is None:
        return web.json_response({"error": {"type": "ServiceUnavailable", "message": "no worker answered"}},
                                 status=503)
    return web.Response(body=answer.body, status=answer.status, content_type=answer.content_type,
                        headers={"Cache-Control": "no-store"})


async def policies(request: web.Request) -> web.Response:
    """Every worker loads the same files (and reloads on the same SIGHUP): the first one's answer."""
    for answer in await ask_all(request, "GET", "/policies"):
        if answer.status is not None:
            return _passed(answer)
    return _passed(Answer(Seat(-1, 0, ""), None))


def _one_worker(request: web.Request) -> Seat | None:
    wanted = request.query.get("worker")
    return next((s for s in request.app[POOL].seats() if str(s.index) == wanted), None)


async def report(request: web.Request) -> web.Response:
    """Each worker's report (?worker=N: that one's alone, in the single-process shape)."""
    if "worker" in request.query:
        seat = _one_worker(request)
        return _passed(await ask(seat, "GET", "/report")) if seat else _no_such_worker()
    answers = await ask_all(request, "GET", "/report")
    return web.json_response({"workers": [{**_who(a), "report": a.json()} for a in answers]},
                             headers={"Cache-Control": "no-store"})


async def report_html(request: web.Request) -> web.Response:
    if "worker" in request.query:
        seat = _one_worker(request)
        return _passed(await ask(seat, "GET", "/report.html")) if seat else _no_such_worker()
    links = "".join(f'<li><a href="report.html?worker={s.index}">worker {s.index}</a> (pid {s.pid})</li>'
                    for s in request.app[POOL].seats())
    return web.Response(text=f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rollout report"
                             f"</title></head><body><h1>Rollout report</h1><p>Each worker keeps its own; "
                             f"<code>redaction-proxy report</code> merges their logs.</p><ul>{links}</ul>"
                             f"</body></html>", content_type="text/html", headers={"Cache-Control": "no-store"})


def _no_such_worker() -> web.Response:
    return web.json_response({"error": {"type": "NotFound", "message": "no running worker has this number"}},
                             status=404)


async def report_reset(request: web.Request) -> web.Response:
    answers = await ask_all(request, "POST", "/report/reset")
    ok = all(a.status == 200 for a in answers)
    return web.json_response({"status": "reset" if ok else "not every worker reset",
                              "workers": [{**_who(a), **(a.json() or {})} for a in answers]},
                             status=200 if ok else 503)


async def decisions(request: web.Request) -> web.Response:
    """The request was served by one worker: the one that knows its id answers."""
    path = f"/decisions/{quote(request.match_info['request_id'], safe='')}"
    for answer in await ask_all(request, "GET", path):
        if answer.status == 200:
            return _passed(answer)
    return web.json_response({"error": {"type": "NotFound", "message": "no recent request has this id"}},
                             status=404)


def make_fanout_app(pool: Pool) -> web.Application:
    app = web.Application()
    app[POOL] = pool
    add_routes(app, sys.modules[__name__])  # the admin listener's own routes, answered for all workers
    return app
