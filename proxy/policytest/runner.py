"""Running a policy case: the real proxy, in-process on loopback, in front of a scripted backend; its
answer compared with the case's (a readable diff of pretty-printed, key-sorted JSON bodies).

The caller's settings are the base settings (the `--settings` file, or everyone sees everything) with
the caller's own user entry updated, key by key, by the case's `settings`.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ..config import Mode, build_config
from ..facts.settings import Settings
from ..http.app import ProxyRunner, make_app
from ..http.state import EXERCISED, Loaded
from ..log import make_logger
from ..policy.load import PERMISSIONS
from ..policy.model import Binding, PolicySet
from .backend import Received, Script, make_scripted_app
from .case import Case

# Without --settings: every setting at its most open, so a case's own `settings` are all that restrict.
OPEN_SETTINGS = Settings(
    defaults={"contacts_visibility": "all", "activity_hours_visibility": "all", "billing_rate_visibility": "all",
              "permissions": PERMISSIONS},
    roles={"Administrator": {"contacts_visibility": "all"}},
    users={},
    source="(built in: everyone sees everything)",
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any                          # the answer's JSON; None for an empty body; text if not JSON
    forwarded: tuple[Received, ...]    # what reached the backend, other than the proxy's facts queries


def case_settings(base: Settings, case: Case) -> Settings:
    """The base settings with the caller's user entry updated by the case's own settings."""
    users = dict(base.users)
    users[case.caller_id] = {**base.users.get(case.caller_id, {}), **case.settings}
    return Settings(base.defaults, base.roles, users, base.source)


async def run_case(
    case: Case, policies: PolicySet, base: Settings, http: aiohttp.ClientSession, *,
    mode: Mode = Mode.ENFORCE, exercised: set[str] | None = None, sentinel: str = "redact",
) -> Answer:
    """Send the case's request through a proxy of its own and return what the client got (`sentinel`:
    the proxy's --sentinel, on by default as when serving)."""
    script = Script(
        caller={"id": case.caller_id, "roles": list(case.caller_roles)},
        matters=list(case.matters), relationships=list(case.relationships),
        created_contacts=list(case.created_contacts),
        default_answer=(case.upstream.status, case.upstream.body) if case.upstream is not None else None,
    )
    backend = web.AppRunner(make_scripted_app(script), access_log=None)
    await backend.setup()
    proxy: ProxyRunner | None = None
    try:
        await web.TCPSite(backend, "127.0.0.1", 0).start()
        upstream = _origin(backend)
        config = build_config(argparse.Namespace(
            upstream=upstream, settings="(policy test)", mode=mode.value, sentinel=sentinel, listen="127.0.0.1:1",
            admin_listen="127.0.0.1:2",  # not listened on: the runner starts its own site
        ), environ={})
        # The proxy's own log lines are not the test's output: kept in memory and dropped.
        app = make_app(config, Loaded(policies, case_settings(base, case), "policy-test"),
                       logger=make_logger(io.StringIO()))
        if exercised is not None:
            app[EXERCISED] = exercised
        proxy = ProxyRunner(app, access_log=None, handler_cancellation=False,
                            keepalive_timeout=config.client_header_timeout)
        await proxy.setup()
        await web.TCPSite(proxy, "127.0.0.1", 0).start()
        body = case.request.body
        headers = {"Authorization": f"Bearer token-{case.caller_id}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with http.request(case.request.method, _origin(proxy) + case.request.path, headers=headers,
                                data=orjson.dumps(body) if body is not None else None) as response:
            raw = await response.read()
            return Answer(response.status, _decode(raw), tuple(script.forwarded))
    finally:
        if proxy is not None:
            await proxy.cleanup()
        await backend.cleanup()


def judge(case: Case, answer: Answer) -> list[str]:
    """What differs between the expected answer and the one given; empty when the case passes."""
    expect = case.expect
    failures = []
    if answer.status != expect.status:
        failures.append(f"status: expected {expect.status}, got {answer.status}")
    body = proxy_tags_named(answer.body)
    if expect.has_body and body != expect.body:
        diff = textwrap.indent(body_diff(expect.body, body), "  ")
        failures.append(f"body differs (- expected, + actual):\n{diff}")
    # The proxy forwards a HEAD as a GET; a PATCH may be preceded by its own GET of the record (the
    # hours check), so only requests of the case's method count as the case's request.
    method = "GET" if case.request.method == "HEAD" else case.request.method
    own = [r for r in answer.forwarded if r.method == method]
    if bool(own) != expect.forwarded:
        failures.append("forwarded: expected the request to reach the backend; it did not" if expect.forwarded
                        else "forwarded: expected the request to be refused before the backend; it reached it")
    for fragment in expect.forwarded_query_has:
        if not answer.forwarded or fragment not in answer.forwarded[0].path_qs:
            got = answer.forwarded[0].path_qs if answer.forwarded else "nothing forwarded"
            failures.append(f"forwarded_query_has: {fragment!r} not in what the backend got ({got})")
    return failures


PROXY_TAG = re.compile(r'"rp\.[0-9a-f]{32}"\Z')
"""The proxy's etag of a record (proxy/etag.py): a MAC under a key of its own, different each run."""


def proxy_tags_named(doc: Any) -> Any:
    """The proxy's etags spelled `<proxy etag>`, as a case writes them: their value is per key and caller."""
    if isinstance(doc, dict):
        return {k: proxy_tags_named(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [proxy_tags_named(v) for v in doc]
    return "<proxy etag>" if isinstance(doc, str) and PROXY_TAG.match(doc) else doc


def body_diff(expected: Any, actual: Any) -> str:
    lines = difflib.unified_diff(_pretty(expected), _pretty(actual), "expected", "actual", lineterm="")
    return "\n".join(lines)


def policy_steps(policies: PolicySet) -> dict[str, Binding[Any]]:
    """Every binding of the policy set by its source (file:line:col); a family's shared checks once."""
    steps: dict[str, Binding[Any]] = {}
    for route in policies.routes:
        for binding in (*route.checks, *route.respond):
            steps.setdefault(binding.source, binding)
    return steps


def _pretty(doc: Any) -> list[str]:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def _origin(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"
