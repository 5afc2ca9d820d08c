"""The pipeline of one policed request, read straight down.

prepare: the canonical request, the write's body, the caller's facts (503 if they cannot be had),
the checks -> a request to forward (a refused one ends here: the backend is never called), with the
fields decisions need added; forward (identity encoding); respond (proxy/http/respond.py: decide,
log, apply, strip what was added, seal, rewrite links, clean headers).

What the mode applies is one value, `services.effects` (proxy/effects.py). Dry-run's one difference
in flow: a request or an answer that cannot be decided is passed on as it came (logged, counted).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from ..check import Violation, check_record, check_request, record_checks
from ..decide import names_one_record
from ..errors import (
    BadGatewayError,
    BadRequestError,
    ClientGoneError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ProxyError,
    RequestTimeoutError,
    UnavailableError,
    UnsupportedMediaError,
)
from ..etag import IfMatch, Sealer, forwarded_if_match, parse_if_match
from ..facts.service import auth_digest
from ..facts.viewer import Viewer
from ..policy.canonical import CanonicalTarget, render_target
from ..policy.fields import parse_fields, render_fields
from ..policy.model import Binding, Match, Shape
from ..query_check import PAGING, check_query
from ..shadow import NO_RULE, Kind
from ..writebody import check_content_type, encode_body, parse_body
from .answers import error_response
from .exchange import Exchange
from .gaps import gap_scan, report_gaps
from .headers import client_response_headers, mark_private, upstream_request_headers
from .links import copy_link_headers, public_origin
from .relay import pass_on, relay
from .respond import respond_index, respond_show
from .shadowing import Candidate, RecordShadow, candidate_viewer, compare_checks
from .state import EXERCISED, Loaded, Outcome, Services
from .upstream import UpstreamResponse, read_capped

WRITES = frozenset({"POST", "PUT", "PATCH"})
_ERROR_TYPE = re.compile(r"[A-Za-z]{1,64}\Z")


async def handle_policed(
    request: web.Request, services: Services, loaded: Loaded, match: Match, target: CanonicalTarget,
    outcome: Outcome, candidate: Candidate | None = None,
) -> web.StreamResponse:
    try:
        forward = await _prepare(request, services, loaded, match, target, outcome, candidate)
    except _PassOn as undecidable:
        # Dry-run never breaks traffic: undecidable, logged and counted, and passed on as it came.
        outcome.undecidable = undecidable.error.message
        return await relay(request, services, target, outcome, body=undecidable.body)
    return await _forward(forward)


@dataclass(frozen=True, slots=True)
class _Forward:
    """A policed request that passed its checks: what goes to the backend, and the exchange."""

    x: Exchange
    target: str
    headers: CIMultiDict[str]
    payload: bytes | None


class _PassOn(Exception):
    """Dry-run: the request cannot be decided; it goes to the backend as it came (`body`: its bytes)."""

    def __init__(self, error: ProxyError, body: bytes | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.body = body


async def _prepare(
    request: web.Request, services: Services, loaded: Loaded, match: Match, target: CanonicalTarget,
    outcome: Outcome, candidate: Candidate | None,
) -> _Forward:
    route = match.route
    method = "GET" if request.method == "HEAD" else request.method
    effects = services.effects
    authorization = request.headers.get("Authorization", "")
    raw_body = await _read_body(request, services, method)
    if method != "GET" and any(key != "fields" for key, _ in target.query):
        # A write's references are checked in its body; one moved to the query (`?contact_id=5`,
        # `ids[]=5`) would not be, so a policed write takes no parameter but `fields` (dry-run: passed
        # on as a request it cannot decide).
        exc = BadRequestError("a write on a policed endpoint takes no query parameter but fields")
        raise exc if effects.fail_closed else _PassOn(exc, raw_body)
    try:
        body = _parse_body(request, raw_body)
    except ProxyError as exc:
        raise exc if effects.fail_closed else _PassOn(exc, raw_body) from None
    fields_text = target.param("fields")
    if fields_text is not None:
        parse_fields(fields_text)  # a malformed `fields` is a 400 before any facts are fetched
    if_match = _parse_if_match(request)

    try:
        viewer = await services.facts.viewer(authorization, loaded.policies, loaded.settings)
    except UnavailableError as exc:
        raise exc if effects.fail_closed else _PassOn(exc, raw_body) from None
    outcome.user_id = viewer.user_id

    segments = (*loaded.policies.base, *_template_segments(route.segments, match.params))
    segments = (*segments[:-1], segments[-1] + ".json")  # the matched path, as it is forwarded
    violations = check_request(route, method, match.params, body, viewer)
    violations.extend(check_query(route, method, target.query, viewer.settings))
    fetched: dict[str, Any] = {}  # the records record checks read, by fields: fetched once for both sets
    try:
        for binding, fields in record_checks(route, method, body, viewer):
            if fields not in fetched:
                fetched[fields] = await _prefetch(services, segments, authorization, fields)
            if (v := check_record(binding, fetched[fields], viewer)) is not None:
                violations.append(v)
    except ProxyError as exc:
        # The record a check reads cannot be had or judged: enforce refuses, dry-run passes it on.
        raise exc if effects.fail_closed else _PassOn(exc, raw_body) from None
    shadow_viewer = None
    if candidate is not None:
        shadow_viewer = await candidate_viewer(services, authorization, loaded, candidate.loaded, viewer)
        await _shadow_checks(services, outcome, candidate, shadow_viewer, violations, method, match.params, body,
                             target.query, segments, authorization, fetched)
    if violations:
        _record_blocked(services, outcome, violations, route.template, method)
        _note_exercised(request, (v.binding for v in violations))
        if effects.block:
            raise violations[0].error  # the backend is never called

    plan = loaded.plans.get(route, viewer.settings, fields_text, index=method == "GET" and route.shape is Shape.INDEX)
    query = target.query
    if plan.upstream_selection is not None:
        query = _with_fields(query, render_fields(plan.upstream_selection))
    records_shadow = None
    if candidate is not None and shadow_viewer is not None:
        shadow_plan = candidate.loaded.plans.get(candidate.route, shadow_viewer.settings, fields_text,
                                                 index=method == "GET" and route.shape is Shape.INDEX)
        records_shadow = RecordShadow.of(plan, shadow_plan, shadow_viewer, fields_text, outcome.shadow_of(),
                                         route.template)
    x = Exchange(
        request, services, loaded, route, method, plan.bind(viewer), authorization, fields_text,
        _count_target(plan.filters, route.template, segments, target.query) if plan.filters else None,
        public_origin(request, services.config.public_origin), outcome,
        Sealer.of(services.etag_key, auth_digest(authorization), loaded.policies.version),
        record_id=match.params[route.params[-1]] if names_one_record(route) else None, shadow=records_shadow,
    )
    x.gaps = gap_scan(services, plan, viewer)
    headers = upstream_request_headers(request, policed=True, request_id=outcome.request_id,
                                       trusted_hops=services.config.trusted_hops)
    if if_match is not None and if_match.proxy_tags:
        # Our tags mean nothing to the backend (and are never sent raw): one that verifies against
        # the record as it is now becomes the backend's own etag, so the backend still decides.
        if route.shape is not Shape.SHOW:
            raise PreconditionFailedError("an ETag of the proxy names one record; this is not one")
        current = await _current_etag(services, segments, authorization)
        forwarded_tag = forwarded_if_match(if_match, x.sealer, current)
        if forwarded_tag is None:
            raise PreconditionFailedError("the record has changed since the given ETag (If-Match)")
        headers["If-Match"] = forwarded_tag
    payload = None
    if body is not None:
        payload = encode_body(body)  # the body that was checked, re-encoded, is the body forwarded
        headers["Content-Type"] = "application/json; charset=utf-8"
    return _Forward(x, render_target(segments, query), headers, payload)


async def _forward(forward: _Forward) -> web.StreamResponse:
    x = forward.x
    services, outcome, method = x.services, x.outcome, x.method
    started = time.monotonic()
    try:
        async with services.upstream.request(method, forward.target, forward.headers, forward.payload) as response:
            services.metrics.upstream_seconds.labels(x.route.template).observe(time.monotonic() - started)
            outcome.upstream_status = response.status
            if method in WRITES | {"DELETE"} and x.route.refreshes_facts and response.status < 300:
                services.facts.invalidate()
            try:
                return await _respond(x, response, method)
            except (BadGatewayError, UnavailableError) as exc:
                if services.effects.fail_closed or x.tap is None:
                    raise
                # Dry-run never breaks traffic: an answer that cannot be examined (wrong type or
                # encoding, malformed, an unexpected status) is undecidable, logged and counted, and
                # passed on as it came. A raised error means the client has been sent nothing yet.
                outcome.undecidable = exc.message
                return await pass_on(x.request, services, response, outcome, b"".join(x.tap))
    finally:
        _note_exercised(x.request, (step.binding for step in x.tally))
        x.flush_tally()
        report_gaps(services, x.gaps, x.route.template, outcome)


async def _respond(x: Exchange, response: UpstreamResponse, method: str) -> web.StreamResponse:
    status = response.status
    headers = client_response_headers(response.headers, policed=True)
    headers["X-Request-Id"] = x.outcome.request_id
    copy_link_headers(response.headers, headers, x.services.upstream.origin, x.public, x.client_fields, policed=True)
    if status in (204, 205) or (300 <= status < 400 and status != 304):
        mark_private(headers)
        return web.Response(status=status, headers=headers)  # redirects are relayed, never followed
    if status >= 400:
        return await _error_from_backend(response, headers, x.tap)
    if status not in (200, 201):
        raise BadGatewayError(f"the backend answered {status}, which cannot be examined")  # 206, 304...
    if x.route.shape is Shape.RELAY:
        # No rule reads a relay route's body (a preview, a download); its checks have run: as it came.
        return await pass_on(x.request, x.services, response, x.outcome)
    if method == "GET" and x.route.shape is Shape.INDEX:
        return await respond_index(x, response, headers)
    return await respond_show(x, response, headers)


async def _error_from_backend(
    response: UpstreamResponse, headers: CIMultiDict[str], tap: list[bytes] | None
) -> web.Response:
    """The backend's status and error type pass; its message does not (it may quote hidden names)."""
    raw = await response.read(64 * 1024, tap)
    wire_type = "Error"
    try:
        doc: Any = orjson.loads(raw)
        candidate = doc.get("error", {}).get("type") if isinstance(doc, dict) else None
        if isinstance(candidate, str) and _ERROR_TYPE.match(candidate):
            wire_type = candidate
    except (ValueError, AttributeError):
        pass
    return error_response(response.status, wire_type, f"the backend answered {response.status}", headers)


async def _read_body(request: web.Request, services: Services, method: str) -> bytes | None:
    """Read a write's body within a deadline and a size cap; GET and DELETE carry none."""
    has_body = request.body_exists
    if method not in WRITES:
        if has_body:
            raise BadRequestError(f"a {method} request carries no body")
        return None
    if not has_body:
        return None
    too_large = PayloadTooLargeError("the request body is too large to examine")
    try:
        async with asyncio.timeout(services.config.client_body_timeout):
            return await read_capped(request.content.iter_any(), services.config.max_write_body, too_large)
    except TimeoutError:
        raise RequestTimeoutError("the request body took too long") from None
    except ConnectionError:
        raise ClientGoneError("the client went away while sending its body") from None
    except HttpProcessingError:
        raise BadRequestError("the request body is malformed") from None


def _parse_body(request: web.Request, raw: bytes | None) -> Any:
    if raw is None:
        return None
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise UnsupportedMediaError("a compressed request body cannot be examined")
    check_content_type(request.headers.get("Content-Type"))
    return parse_body(raw)


async def _prefetch(services: Services, segments: tuple[str, ...], authorization: str, fields: str) -> Any:
    """The record as the backend has it, with the fields a check reads (an activity, for a PATCH)."""
    try:
        status, body = await services.upstream.get_json(render_target(segments, (("fields", fields),)), authorization)
    except ProxyError as exc:
        raise UnavailableError("the activity could not be checked") from exc
    if status == 404:
        raise NotFoundError("no such record")  # what the backend answers the write; never forwarded unchecked
    data = body.get("data") if status == 200 and isinstance(body, dict) else None
    asked = segments[-1].removesuffix(".json")
    if not isinstance(data, dict) or (asked.isdigit() and data.get("id") != int(asked)):
        # No record, or another one: the check cannot be made, so the write cannot go (fail closed).
        raise UnavailableError("the record could not be checked")
    return data


async def _shadow_checks(
    services: Services, outcome: Outcome, candidate: Candidate, viewer: Viewer | None, live: list[Violation],
    method: str, params: dict[str, int], body: Any, query: tuple[tuple[str, str], ...], segments: tuple[str, ...],
    authorization: str, fetched: dict[str, Any],
) -> None:
    """The candidate's checks on the request, compared with the live set's; never blocking on its own."""
    tally, template = outcome.shadow_of(), candidate.route.template
    if viewer is None:
        tally.add(template, [(NO_RULE, Kind.UNDECIDABLE, "")])  # its caller's facts could not be had
        return
    extra: list[Violation] = []
    try:
        for binding, fields in record_checks(candidate.route, method, body, viewer):
            if fields not in fetched:  # the candidate checks a record the live set let through: it must read it
                fetched[fields] = await _prefetch(services, segments, authorization, fields)
            if (v := check_record(binding, fetched[fields], viewer)) is not None:
                extra.append(v)
    except ProxyError:
        tally.add(template, [(NO_RULE, Kind.UNDECIDABLE, "")])
        return
    compare_checks(tally, template, live, candidate.route, method, params, body, query, viewer, extra)


def _parse_if_match(request: web.Request) -> IfMatch | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    try:
        return parse_if_match(header)
    except ValueError:
        # Read two ways (by us, by the backend) a malformed precondition could pass one and not the other.
        raise BadRequestError("If-Match is malformed") from None


async def _current_etag(services: Services, segments: tuple[str, ...], authorization: str) -> str | None:
    """The record's etag as the backend has it now, read with the caller's own credentials."""
    try:
        status, body = await services.upstream.get_json(render_target(segments, (("fields", "id,etag"),)),
                                                        authorization)
    except ProxyError as exc:
        raise UnavailableError("the If-Match precondition could not be checked") from exc
    if status == 404:
        raise NotFoundError("no such record")  # what the backend answers a write to it, before any 412
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise UnavailableError("the If-Match precondition could not be checked")
    etag = body["data"].get("etag")
    if etag is not None and not isinstance(etag, str):
        raise BadGatewayError("the backend's etag is not a string")
    return etag or None


def _record_blocked(services: Services, outcome: Outcome, violations: list[Violation], route: str, method: str) -> None:
    mode = services.config.mode.value
    trail = outcome.trail_of()
    for v in violations:
        rule, action, status = v.binding.rule.value, v.binding.action.value, v.error.status
        services.metrics.blocked.labels(rule, str(status), mode, route).inc()
        event = {"request_id": outcome.request_id, "mode": mode, "route": route, "method": method,
                 "user_id": outcome.user_id, "rule": rule, "action": action, "status": status,
                 "object_id": v.object_id, "outcome": services.effects.word}
        services.log.info("blocked", **event)
        services.report.add({"event": "blocked", **event})
        trail.refused(rule, action, status, v.object_id)
    outcome.blocked = violations[0].binding.rule.value


def _note_exercised(request: web.Request, bindings: Iterable[Binding[Any]]) -> None:
    """For `redaction-proxy test`, which reports the policy steps no case exercised; serving keeps nothing."""
    seen = request.app.get(EXERCISED)
    if seen is not None:
        seen.update(b.source for b in bindings)


def _with_fields(query: tuple[tuple[str, str], ...], fields: str) -> tuple[tuple[str, str], ...]:
    out = [(k, v) for k, v in query if k != "fields"]
    return (("fields", fields), *out)


def _template_segments(segments: tuple[str | None, ...], params: dict[str, int]) -> tuple[str, ...]:
    ids = iter(params.values())
    return tuple(s if s is not None else str(next(ids)) for s in segments)


def _count_target(
    filtered: Binding[Any], template: str, segments: tuple[str, ...], query: tuple[tuple[str, str], ...]
) -> str | None:
    """None when the filter's visible set itself is the honest count (its unfiltered whole index:
    the contacts index for the contacts filter)."""
    filters = tuple((k, v) for k, v in query if k not in PAGING and k != "order")  # neither changes the count
    if filtered.definition.whole_index == template and not filters:
        return None
    return render_target(segments, (("fields", "id"), ("limit", "200"), ("order", "id(asc)"), *filters))

