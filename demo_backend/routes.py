"""Routing of `/api/v4/...` paths, each with or without the `.json` suffix, to the resource handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from . import handlers, subresources
from .errors import ApiError, not_found
from .handlers import Handler
from .resources import RESOURCES, Resource

API_PREFIX = "/api/v4/"
ID = "{id}"

_ACTION_METHODS = {"index": ("GET", ""), "create": ("POST", ""), "show": ("GET", ID), "update": ("PATCH", ID),
                   "delete": ("DELETE", ID)}
_ACTION_HANDLERS: Mapping[str, Handler] = MappingProxyType({
    "index": handlers.index, "create": handlers.create, "show": handlers.show, "update": handlers.update,
    "delete": handlers.delete,
})
_EXTRA = (
    ("users", "who_am_i", subresources.who_am_i),
    ("contacts", f"{ID}/email_addresses", subresources.contact_email_addresses),
    ("contacts", f"{ID}/phone_numbers", subresources.contact_phone_numbers),
    ("matters", f"{ID}/client", subresources.matter_client),
    ("matters", f"{ID}/contacts", subresources.matter_contacts),
    ("matters", f"{ID}/related_contacts", subresources.matter_related_contacts),
)


@dataclass(frozen=True)
class Route:
    resource: Resource
    handler: Handler
    record_id: int | None


def _table() -> Mapping[tuple[str, ...], Mapping[str, tuple[str, Handler]]]:
    """pattern (segments, `{id}` for a numeric id) -> method -> (resource name, handler)."""
    table: dict[tuple[str, ...], dict[str, tuple[str, Handler]]] = {}
    for resource in RESOURCES.values():
        for action in sorted(resource.actions):
            method, tail = _ACTION_METHODS[action]
            path = tuple((resource.path or resource.name).split("/"))
            pattern = (*path, tail) if tail else path
            table.setdefault(pattern, {})[method] = (resource.name, _ACTION_HANDLERS[action])
    for name, tail, handler in _EXTRA:
        table.setdefault((name, *tail.split("/")), {})["GET"] = (name, handler)
    return MappingProxyType({k: MappingProxyType(v) for k, v in table.items()})


ROUTES = _table()


def resolve(method: str, path: str) -> Route:
    """The route of an API path, or the API's 404/405 error."""
    if not path.startswith(API_PREFIX):
        raise not_found(f"No route matches {path}")
    segments = path[len(API_PREFIX):].split("/")
    if segments[-1].endswith(".json"):
        segments[-1] = segments[-1][: -len(".json")]
    pattern = tuple(ID if s.isdigit() and s.isascii() else s for s in segments)
    methods = ROUTES.get(pattern)
    if methods is None or "" in segments:
        raise not_found(f"No route matches {path}")
    if method not in methods:
        allowed = ", ".join(sorted(methods))
        message = f"{method} is not allowed here (allowed: {allowed})"
        raise ApiError(405, "MethodNotAllowed", message, {"Allow": allowed})
    resource_name, handler = methods[method]
    record_id = next((int(s) for s in segments if s.isdigit() and s.isascii()), None)
    return Route(RESOURCES[resource_name], handler, record_id)
