"""The settings file: which visibility setting each caller has (defaults, roles, users; most specific wins).

Loaded and validated once; an unknown key or value stops start-up naming file, line and key.
When a caller has several roles that disagree, the most restrictive value wins (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rules import BUNDLED
from ..rules.registry import Registry
from ..yamldoc import Doc, Problems, load_yaml


@dataclass(frozen=True, slots=True)
class UserSettings:
    """One caller's resolved settings: each rule's setting (in the registry's order), and permissions.
    Hashable: plans are cached by it."""

    values: tuple[tuple[str, str], ...]
    permissions: frozenset[str]

    def __getitem__(self, key: str) -> str:
        for name, value in self.values:
            if name == key:
                return value
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Settings:
    defaults: dict[str, Any]
    roles: dict[str, dict[str, Any]]
    users: dict[int, dict[str, Any]]
    source: str
    registry: Registry = field(default=BUNDLED, compare=False, repr=False)

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
        settings = self.registry.settings
        merged = {s.key: s.default for s in settings.values()}
        merged.update(self.defaults)
        role_entries = [self.roles[r] for r in roles if r in self.roles]
        for key in (*settings, "permissions"):
            values = [entry[key] for entry in role_entries if key in entry]
            if values:
                merged[key] = _most_restrictive(self.registry, key, values)
        merged.update(self.users.get(user_id, {}))
        return UserSettings(tuple((key, str(merged[key])) for key in settings), frozenset(merged["permissions"]))


def _most_restrictive(registry: Registry, key: str, values: list[Any]) -> Any:
    if key == "permissions":
        return frozenset.intersection(*(frozenset(v) for v in values))
    order = registry.settings[key].values
    return max(values, key=order.index)


def load_settings(path: Path, registry: Registry = BUNDLED) -> Settings:
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
    defaults = _entry(doc, value.get("defaults"), ("defaults",), problems, registry)
    # A rule's setting may be left out (the rule's default holds); the permissions may not.
    if "permissions" not in defaults:
        problems.add(doc.where("defaults"), "defaults: must set 'permissions'")
    roles = {
        str(name): _entry(doc, entry, ("roles", name), problems, registry)
        for name, entry in _mapping(doc, value.get("roles", {}), ("roles",), problems).items()
    }
    users: dict[int, dict[str, Any]] = {}
    for name, entry in _mapping(doc, value.get("users", {}), ("users",), problems).items():
        if not str(name).isdigit():
            problems.add(doc.where("users", name), f"users: {name!r} is not a user id")
            continue
        users[int(name)] = _entry(doc, entry, ("users", name), problems, registry)
    problems.raise_if_any()
    return Settings(defaults, roles, users, str(path), registry)


def _mapping(doc: Doc, raw: Any, at: tuple[str, ...], problems: Problems) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(doc.where(*at), f"{'.'.join(at)}: must be a mapping")
        return {}
    return raw


def _entry(
    doc: Doc, raw: Any, at: tuple[str, ...], problems: Problems, registry: Registry = BUNDLED
) -> dict[str, Any]:
    permissions = registry.permissions
    out: dict[str, Any] = {}
    for key, value in _mapping(doc, raw, at, problems).items():
        where = doc.where(*at, key)
        if key == "permissions":
            if not isinstance(value, list):
                problems.add(where, f"permissions: must be a list of some of {sorted(permissions)}")
                continue
            unknown = [v for v in value if v not in permissions]
            if unknown:
                names = ", ".join(repr(v) for v in unknown)
                problems.add(where, f"permissions: {names} not among {sorted(permissions)}")
                continue
            out[key] = frozenset(value)
        elif key in registry.settings:
            allowed = list(registry.settings[key].values)
            if value not in allowed:
                problems.add(where, f"{key}: {value!r} is not one of {allowed}")
                continue
            out[key] = value
        else:
            problems.add(where, f"unknown key {key!r} (known: {', '.join((*registry.settings, 'permissions'))})")
    return out
