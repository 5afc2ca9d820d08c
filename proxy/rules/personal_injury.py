"""Personal Injury (2024-01-30): the Personal Injury endpoints need the `personal_injury` permission.

Seed row: "Personal Injury endpoints require the personal_injury permission". The rule has no
setting of its own: the permission is granted in the settings file's `permissions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ForbiddenError, ProxyError
from ..policy.model import Binding
from .base import ActionDef, RuleDef, SpecReader

if TYPE_CHECKING:
    from ..facts.settings import UserSettings
    from ..facts.viewer import Viewer

PERMISSION = "personal_injury"


@dataclass(frozen=True, slots=True)
class Permission:
    """require_permission: the permission the caller must hold."""

    permission: str


def _spec(reader: SpecReader) -> Permission:
    permission = reader.get("permission")
    if permission not in reader.permissions:
        reader.problem("permission", f"permission: must be one of {sorted(reader.permissions)}")
        return Permission("")
    return Permission(str(permission))


def _require(binding: Binding[Permission], params: dict[str, int], data: Any,
             viewer: Viewer) -> tuple[ProxyError, int | None] | None:
    permission = binding.spec.permission
    if permission not in viewer.settings.permissions:
        return ForbiddenError(f"{binding.rule}: the {permission} permission is required", rule=binding.rule), None
    return None


def _gated(settings: UserSettings) -> bool:
    return PERMISSION not in settings.permissions


RULE = RuleDef(
    "personal_injury",
    None,
    (ActionDef("require_permission", frozenset({"permission"}), _spec, check=_require),),
    _gated,
    permissions=frozenset({PERMISSION}),
)
"""Personal Injury (2024-01-30), everything the proxy knows about it."""
