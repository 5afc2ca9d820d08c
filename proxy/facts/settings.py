"""The settings file: which visibility setting each caller has (defaults, roles, users; most specific wins).

Loaded and validated once; an unknown key or value stops start-up naming file, line and key.
When a caller has several roles that disagree, the most restrictive value wins (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..policy.load import PERMISSIONS
from ..yamldoc import Doc, Problems, load_yaml


class ContactsVisibility(StrEnum):
    ALL = "all"
    RESTRICTED = "restricted"


class ActivityHoursVisibility(StrEnum):
    ALL = "all"
    OWN_AND_RESPONSIBLE_ATTORNEY = "own_and_responsible_attorney"


class BillingRateVisibility(StrEnum):
    ALL = "all"
    OWN = "own"
    NONE = "none"


# Each enum's members, least to most restrictive.
_ENUMS: dict[str, type[StrEnum]] = {
    "contacts_visibility": ContactsVisibility,
    "activity_hours_visibility": ActivityHoursVisibility,
    "billing_rate_visibility": BillingRateVisibility,
}
KEYS = (*_ENUMS, "permissions")


@dataclass(frozen=True, slots=True)
class UserSettings:
    contacts_visibility: ContactsVisibility
    activity_hours_visibility: ActivityHoursVisibility
    billing_rate_visibility: BillingRateVisibility
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True)
class Settings:
    defaults: dict[str, Any]
    roles: dict[str, dict[str, Any]]
    users: dict[int, dict[str, Any]]
    source: str

    _resolved: dict[tuple[int, tuple[str, ...]], UserSettings] = field(
        default_factory=dict, compare=False, repr=False
    )

    def for_caller(self, user_id: int, roles: tuple[str, ...]) -> UserSettings:
        """The caller's settings; resolved once per (user, roles) for the life of these settings."""
        key = (user_id, roles)
        resolved = self._resolved.get(key)
        if resolved is None:
            if len(self._resolved) >= 65536:
                self._resolved.clear()  # bounded: a firm has far fewer users than this
            resolved = self._resolved[key] = self._resolve(user_id, roles)
        return resolved

    def _resolve(self, user_id: int, roles: tuple[str, ...]) -> UserSettings:
        merged = dict(self.defaults)
        role_entries = [self.roles[r] for r in roles if r in self.roles]
        for key in KEYS:
            values = [entry[key] for entry in role_entries if key in entry]
            if values:
                merged[key] = _most_restrictive(key, values)
        merged.update(self.users.get(user_id, {}))
        return UserSettings(
            ContactsVisibility(merged["contacts_visibility"]),
            ActivityHoursVisibility(merged["activity_hours_visibility"]),
            BillingRateVisibility(merged["billing_rate_visibility"]),
            frozenset(merged["permissions"]),
        )


def _most_restrictive(key: str, values: list[Any]) -> Any:
    if key == "permissions":
        return frozenset.intersection(*(frozenset(v) for v in values))
    order = list(_ENUMS[key])
    return max(values, key=lambda v: order.index(_ENUMS[key](v)))


def load_settings(path: Path) -> Settings:
    """Load and validate the settings file; raise ConfigError listing every problem."""
    problems = Problems()
    doc = load_yaml(path, problems)
    problems.raise_if_any()
    assert doc is not None
    value = doc.value if doc.value is not None else {}
    if not isinstance(value, dict):
        problems.add(doc.where(), "settings must be a mapping with defaults, roles, users")
        problems.raise_if_any()
    for key in value:
        if key not in ("defaults", "roles", "users"):
            problems.add(doc.where(key), f"unknown key {key!r} (known: defaults, roles, users)")
    defaults = _entry(doc, value.get("defaults"), ("defaults",), problems)
    for key in KEYS:
        if key not in defaults:
            problems.add(doc.where("defaults"), f"defaults: must set {key!r}")
    roles = {
        str(name): _entry(doc, entry, ("roles", name), problems)
        for name, entry in _mapping(doc, value.get("roles", {}), ("roles",), problems).items()
    }
    users: dict[int, dict[str, Any]] = {}
    for name, entry in _mapping(doc, value.get("users", {}), ("users",), problems).items():
        if not str(name).isdigit():
            problems.add(doc.where("users", name), f"users: {name!r} is not a user id")
            continue
        users[int(name)] = _entry(doc, entry, ("users", name), problems)
    problems.raise_if_any()
    return Settings(defaults, roles, users, str(path))


def _mapping(doc: Doc, raw: Any, at: tuple[str, ...], problems: Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(doc.where(*at), f"{'.'.join(at)}: must be a mapping")
        return {}
    return raw


def _entry(doc: Doc, raw: Any, at: tuple[str, ...], problems: Problems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _mapping(doc, raw, at, problems).items():
        where = doc.where(*at, key)
        if key == "permissions":
            if not isinstance(value, list):
                problems.add(where, f"permissions: must be a list of some of {sorted(PERMISSIONS)}")
                continue
            unknown = [v for v in value if v not in PERMISSIONS]
            if unknown:
                names = ", ".join(repr(v) for v in unknown)
                problems.add(where, f"permissions: {names} not among {sorted(PERMISSIONS)}")
                continue
            out[key] = frozenset(value)
        elif key in _ENUMS:
            allowed = [m.value for m in _ENUMS[key]]
            if value not in allowed:
                problems.add(where, f"{key}: {value!r} is not one of {allowed}")
                continue
            out[key] = value
        else:
            problems.add(where, f"unknown key {key!r} (known: {', '.join(KEYS)})")
    return out
