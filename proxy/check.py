"""Checks on the request, before anything reaches the backend: gates, hidden ids in the path,
writes naming hidden contacts, edits of hidden hours. Pure: the shell fetches what they read.

Each check returns violations rather than raising, so dry-run can log what enforce would block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import BLOCK_ERRORS, BadRequestError, ForbiddenError, NotFoundError, ProxyError
from .facts.viewer import Viewer
from .policy.model import Action, Binding, Route
from .rules import activity_hours, contacts


@dataclass(frozen=True, slots=True)
class Violation:
    binding: Binding
    error: ProxyError
    object_id: int | None


def check_request(route: Route, method: str, params: dict[str, int], data: Any, viewer: Viewer) -> list[Violation]:
    """Violations that need nothing but the request and the caller's facts."""
    out: list[Violation] = []
    for binding in route.checks:
        if method not in binding.methods:
            continue
        if binding.action is Action.REQUIRE_PERMISSION:
            if binding.permission not in viewer.settings.permissions:
                out.append(Violation(binding, ForbiddenError(
                    f"{binding.rule}: the {binding.permission} permission is required", rule=binding.rule), None))
        elif binding.action is Action.HIDE_CONTACT:
            assert binding.param is not None
            contact_id = params[binding.param]
            if contacts.restricted(viewer.settings) and not contacts.visible(contact_id, viewer):
                out.append(Violation(binding, NotFoundError(
                    f"{binding.rule}: no such contact", rule=binding.rule), contact_id))
        elif (binding.action is Action.REFUSE_CONTACT_REFERENCE and contacts.restricted(viewer.settings)
              and data is not None):
            try:
                contacts.refuse_hidden_references(_data(data), binding, viewer)
            except ProxyError as exc:
                out.append(Violation(binding, exc, None))
        elif (binding.action is Action.REFUSE_CONTACT_VALUE and contacts.restricted(viewer.settings)
              and data is not None):
            try:
                contacts.refuse_hidden_values(_data(data), binding, viewer)
            except ProxyError as exc:
                out.append(Violation(binding, exc, None))
    return out


def hours_edit_checks(route: Route, method: str, data: Any, viewer: Viewer) -> list[Binding]:
    """The hours-edit checks this write triggers: they need the activity as the backend has it."""
    if not activity_hours.restricted(viewer.settings) or data is None:
        return []
    body = _data(data)
    return [
        b for b in route.checks
        if b.action is Action.REFUSE_HOURS_EDIT and method in b.methods
        and any(f in body for f in activity_hours.PROTECTED_FIELDS.union(b.fields))
    ]


def check_hours_edit(binding: Binding, activity: Any, viewer: Viewer) -> Violation | None:
    if activity_hours.hours_judge(viewer)(activity):
        error = BLOCK_ERRORS[binding.status](
            f"{binding.rule}: the hours of this time entry cannot be changed by you", rule=binding.rule)
        return Violation(binding, error, activity.get("id") if isinstance(activity, dict) else None)
    return None


def _data(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BadRequestError('the body must be {"data": {...}}')
    data: dict[str, Any] = body["data"]
    return data
