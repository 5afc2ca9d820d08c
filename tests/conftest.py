"""Shared fixtures: a real HTTP client, settings files, the proxy in front of a scripted backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest
import yaml

ALL = {
    "contacts_visibility": "all",
    "activity_hours_visibility": "all",
    "billing_rate_visibility": "all",
    "permissions": ["matters", "documents", "contacts", "personal_injury"],
}
RESTRICTED = {
    "contacts_visibility": "restricted",
    "activity_hours_visibility": "own_and_responsible_attorney",
    "billing_rate_visibility": "own",
    "permissions": ["matters", "documents", "contacts"],
}


def write_settings(directory: Path, users: Mapping[int, Mapping[str, object]]) -> Path:
    path = directory / "settings.yaml"
    path.write_text(yaml.safe_dump({
        "defaults": ALL,
        "roles": {"Administrator": {"contacts_visibility": "all"}},
        "users": {str(k): v for k, v in users.items()},
    }))
    return path


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """User 2 is restricted by every rule; everyone else sees everything."""
    return write_settings(tmp_path, {2: RESTRICTED})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=True) as session:
        yield session
