"""The caller as rules see it: id, resolved settings, and the visible sets (fetched only when needed)."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import UserSettings


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: int
    roles: tuple[str, ...]
    settings: UserSettings
    visible_contacts: frozenset[int] | None = None     # None: contacts_visibility is `all`
    responsible_matters: frozenset[int] | None = None  # None: hours visibility is `all`
