"""The one entry point for proxied traffic: canonicalise, route (policed or relayed), answer errors,
and write exactly one canonical log line per request.
"""

from __future__ import annotations

import asyncio
import re
import time

from aiohttp import HttpVersion10, HttpVersion11, web

from ..errors import (
    BadRequestError,
    ClientGoneError,
    GatewayTimeoutError,
    MethodNotAllowedError,
    NotFoundError,
    ProxyError,
    UnavailableError,
)
from ..policy.canonical import canonicalise
from ..sentinel import SentinelMode
from ..shadow import NO_RULE, route_difference
from .answers import internal_error_response, proxy_error_response
from .headers import check_host, check_request_headers, request_id
from .policed import handle_policed
from .relay import relay
from .rollout import record_request
from .shadowing import Candidate, flush_shadow
from .state import SERVICES, Loaded, Outcome

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def handle(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    loaded = services.live.current  # one policy version for the whole request
    outcome = Outcome(request_id(request), request.method)
    started = time.monotonic()
    response: web.StreamResponse | None = None
    gate = services.in_flight
    gate.count += 1
    try:
        if gate.count > gate.limit:
            services.metrics.load_shed.inc()
            outcome.route = "load_shed"  # refused before routing: nothing about the path was read
            raise UnavailableError("the proxy is at capacity")  # shed load before any work
        response = await _route(request, outcome, loaded)
    except ProxyError as exc:
        outcome.error = type(exc).__name__
        response = proxy_error_response(exc)
    except ConnectionError:
        # The client went away mid-request: there is no one to answer, and it is not our fault.
        outcome.error = ClientGoneError.__name__
        response = web.Response(status=ClientGoneError.status)
    except Exception:
        # A bug is a 500 with a generic body, never a pass-through and never a traceback to the client.
        outcome.error = "InternalError"
        response = internal_error_response()
        services.log.exception("internal_error", request_id=outcome.request_id)
    finally:
        gate.count -= 1
        status = response.status if response is not None else 499
        outcome.status = status
        mode = services.config.mode.value
        duration = time.monotonic() - started
        services.metrics.requests.labels(outcome.route, outcome.method, str(status), mode).inc()
        services.metrics.request_duration.labels(outcome.route, f"{status // 100}xx").observe(duration)
        if outcome.undecidable:
            services.metrics.undecidable.labels(outcome.route, mode).inc()
        # A 5xx is the proxy's or the backend's trouble: warning, and error for the proxy's own bug (500).
        write = services.log.error if status == 500 else services.log.warning if status >= 500 else services.log.info
        write(
            "request", request_id=outcome.request_id, method=outcome.method,
            route=log_route(outcome.route, loaded, request.raw_path), client=request.remote,
            status=status, upstream_status=outcome.upstream_status, mode=mode,
            duration_ms=round(duration * 1000, 2), bytes_in=request.content.total_bytes,
            bytes_out=_bytes_out(response), decisions=outcome.decisions,
            blocked=outcome.blocked, undecidable=outcome.undecidable, error=outcome.error,
            policy_version=loaded.policies.version, settings_version=loaded.settings_version,
            user_id=outcome.user_id,
        )
        record_request(services, outcome, loaded.policies.version)
        flush_shadow(services, outcome, loaded, outcome.method)
    if response is not None and not response.prepared:
        response.headers["X-Request-Id"] = outcome.request_id
    return response


async def _route(request: web.Request, outcome: Outcome, live: Loaded) -> web.StreamResponse:
    services = request.app[SERVICES]
    if request.method not in ALLOWED_METHODS:
        raise MethodNotAllowedError("this method is not relayed", headers={"Allow": ", ".join(sorted(ALLOWED_METHODS))})
    if request.version not in (HttpVersion10, HttpVersion11):
        # An HTTP/0.9 or 2.0 request line reaching this HTTP/1.1 server is a confused or hostile peer.
        raise BadRequestError("only HTTP/1.0 and HTTP/1.1 are served")
    check_request_headers(request.headers, request.raw_headers)
    check_host(request)
    target = canonicalise(request.raw_path)
    segments = target.match_segments
    candidate = _candidate(live, segments, request.method, outcome)
    if not live.policies.policed(segments):
        outcome.route = "passthrough"
        scanned = live if services.config.sentinel is not SentinelMode.OFF else None
        return await relay(request, services, target, outcome, sentinel=scanned)
    match = live.policies.match(segments)
    if match is None:
        # Inside a policed family, a spelling no route knows is refused, never passed on unexamined.
        raise NotFoundError("no such endpoint")
    outcome.route = match.route.template
    method = "GET" if request.method == "HEAD" else request.method
    if method not in match.route.methods:
        allow = ", ".join(sorted(match.route.methods | ({"HEAD"} if "GET" in match.route.methods else set())))
        raise MethodNotAllowedError(f"{request.method} is not allowed on {match.route.template}",
                                    headers={"Allow": allow})
    # --request-timeout: from arrival to the start of the answer (504); once it has started, the body
    # streams under --upstream-idle-timeout. The deadline is disarmed by `answer_started`.
    try:
        async with asyncio.timeout(services.config.request_timeout) as deadline:
            request[_DEADLINE] = deadline
            return await handle_policed(request, services, live, match, target, outcome, candidate)
    except TimeoutError:
        raise GatewayTimeoutError("the request took longer than the proxy allows") from None
    finally:
        del request[_DEADLINE]  # an answer prepared after this point is past the deadline's scope


def _candidate(live: Loaded, segments: tuple[str, ...], method: str, outcome: Outcome) -> Candidate | None:
    """The candidate set, when it routes the request as the live set does; a routing difference (one
    set polices what the other relays or refuses) is counted, and then no body is decided for it."""
    shadow = live.shadow
    if shadow is None:
        return None
    differs = route_difference(live.policies, shadow.policies, segments, method)
    if differs is not None:
        outcome.shadow_of().add(differs[0], [(NO_RULE, differs[1], "")])
        return None
    match = shadow.policies.match(segments) if shadow.policies.policed(segments) else None
    return Candidate(shadow, match.route) if match is not None else None


_DEADLINE = web.RequestKey("request_deadline", asyncio.Timeout)


async def answer_started(request: web.Request, _: web.StreamResponse) -> None:
    """on_response_prepare: the answer's status is on its way, so the request deadline is disarmed."""
    deadline = request.get(_DEADLINE)
    if deadline is not None:
        deadline.reschedule(None)


_SEGMENT = re.compile(r"[a-z0-9_]{1,64}")


def log_route(route: str, loaded: Loaded, raw_path: str) -> str:
    """The route template, or for a relayed request `passthrough:` and its path down to the first
    segment below the base (`passthrough:/api/v4/custom_fields`): enough to tell families apart,
    bounded, and never an id or a name from deeper in the path."""
    if route != "passthrough":
        return route
    path = raw_path.split("?", 1)[0]
    segments = [s for s in path.lower().split("/") if s]
    base = list(loaded.policies.base)
    keep = len(base) + 1 if segments[: len(base)] == base else 1
    shown = [s.removesuffix(".json") for s in segments[:keep]]
    return "passthrough:/" + "/".join(s if _SEGMENT.fullmatch(s) else "*" for s in shown)


def _bytes_out(response: web.StreamResponse | None) -> int | None:
    """What the answer costs on the way out: for a streamed answer, the bytes aiohttp wrote to the
    socket (status line and headers included); for a whole answer aiohttp writes after the handler
    returns, its body length (its headers are not written yet)."""
    if response is None:
        return None
    if response.prepared:
        return response.body_length
    if isinstance(response, web.Response):
        return response.content_length
    return None
