"""A scripted legacy backend for policy cases: facts from data, every other answer from a table.

It records every request it gets, so a case can prove a blocked request never reached it. Tokens are
`token-<user id>`; a request with any other token is 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    caller: dict[str, Any]                      # who_am_i data: {"id": 2, "roles": [...]}
    matters: list[dict[str, Any]] = field(default_factory=list)
    relationships: list[dict[str, Any]] = field(default_factory=list)
    created_contacts: list[int] = field(default_factory=list)
    answers: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)  # (METHOD, path) -> (status, body)
    default_answer: tuple[int, Any] | None = None   # for any other request
    fault: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None  # overrides answers
    facts_down: bool = False   # every facts query answers 500
    received: list[Received] = field(default_factory=list)

    @property
    def forwarded(self) -> list[Received]:
        """Requests other than the facts queries."""
        return self.forwarded_of(self.received)

    @staticmethod
    def forwarded_of(received: list[Received]) -> list[Received]:
        return [r for r in received if not is_facts_query(r.path_qs)]


def is_facts_query(path_qs: str) -> bool:
    """The proxy's own facts queries (policies/facts.yaml), told apart from forwarded requests."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path_qs)
    fields = parse_qs(parts.query).get("fields", [""])[0]
    return (
        (parts.path == "/api/v4/users/who_am_i.json" and fields == "id,name,email,roles")
        or (parts.path == "/api/v4/matters.json" and "responsible_attorney{id}" in fields)
        or (parts.path == "/api/v4/relationships.json" and fields == "id,contact{id},matter{id}")
        or (parts.path == "/api/v4/contacts.json" and "creator_id=" in parts.query)
    )


def _index(records: list[Any]) -> web.Response:
    return web.json_response({"data": records, "meta": {"paging": {}, "records": len(records)}},
                             dumps=lambda o: orjson.dumps(o).decode())


def make_scripted_app(script: Script) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        script.received.append(Received(request.method, request.raw_path, dict(request.headers), body))
        path = request.path
        if script.facts_down and Received(request.method, request.raw_path, {}, b"") not in script.forwarded_of(
                [Received(request.method, request.raw_path, {}, b"")]):
            return web.json_response({"error": {"type": "InternalServerError", "message": "down"}}, status=500)
        if request.headers.get("Authorization") != f"Bearer token-{script.caller['id']}":
            return web.json_response({"error": {"type": "Unauthorized", "message": "bad token"}}, status=401)
        if path == "/api/v4/users/who_am_i.json" and "fields=id,name,email,roles" in request.raw_path:
            return web.json_response({"data": {"name": "Caller", "email": "c@firm.example", **script.caller}})
        if path == "/api/v4/matters.json" and "responsible_attorney" in request.query.get("fields", ""):
            return _index([
                {"id": m["id"],
                 "client": {"id": m["client"]} if m.get("client") else None,
                 "responsible_attorney": {"id": m["responsible_attorney"]} if m.get("responsible_attorney") else None,
                 "custom_field_values": [{"field_type": "contact", "contact": {"id": c}}
                                         for c in m.get("contact_fields", [])]}
                for m in script.matters
            ])
        if path == "/api/v4/relationships.json" and request.query.get("fields") == "id,contact{id},matter{id}":
            return _index([{"id": i + 1, "contact": {"id": r["contact"]}, "matter": {"id": r["matter"]}}
                           for i, r in enumerate(script.relationships)])
        if path == "/api/v4/contacts.json" and "creator_id" in request.query:
            return _index([{"id": c} for c in script.created_contacts])
        if script.fault is not None:
            return await script.fault(request)
        answer = script.answers.get((request.method, path), script.default_answer)
        if answer is None:
            return web.json_response({"error": {"type": "NotFound", "message": "unscripted"}}, status=404)
        status, payload = answer
        if payload is None:
            return web.Response(status=status)
        return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
