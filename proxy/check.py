"""Checks on the request, before anything reaches the backend: gates, hidden ids in the path,
writes naming hidden contacts, edits of hidden hours. Pure: the shell fetches what they read.

What each check does is its action's (`proxy.rules`, one module per rule); this walks a route's
checks in order. Each check returns violations rather than raising, so dry-run can log what enforce
would block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ProxyError
from .facts.viewer import Viewer
from .policy.model import Binding, Route


@dataclass(frozen=True, slots=True)
class Violation:
    binding: Binding[Any]
    error: ProxyError
    object_id: int | None


def check_request(route: Route, method: str, params: dict[str, int], data: Any, viewer: Viewer) -> list[Violation]:
    """Violations that need nothing but the request and the caller's facts."""
    out: list[Violation] = []
    for binding in route.checks:
        check = binding.definition.check
        if check is None or method not in binding.methods:
            continue
        try:
            refused = check(binding, params, data, viewer)
        except ProxyError as exc:
            out.append(Violation(binding, exc, None))
            continue
        if refused is not None:
            out.append(Violation(binding, *refused))
    return out


def record_checks(route: Route, method: str, data: Any, viewer: Viewer) -> list[tuple[Binding[Any], str]]:
    """The checks this write triggers that need the record as the backend has it, each with the
    fields to fetch it with (an edit of hidden hours needs the activity's user, matter and type)."""
    out: list[tuple[Binding[Any], str]] = []
    for binding in route.checks:
        record = binding.definition.record_check
        if record is not None and method in binding.methods and record.wants(binding, data, viewer):
            out.append((binding, record.fields))
    return out


def check_record(binding: Binding[Any], record: Any, viewer: Viewer) -> Violation | None:
    """The record check of `binding` on the record as the backend has it."""
    assert binding.definition.record_check is not None
    error = binding.definition.record_check.refuse(binding, record, viewer)
    if error is None:
        return None
    return Violation(binding, error, record.get("id") if isinstance(record, dict) else None)
