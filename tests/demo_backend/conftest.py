"""Fixtures for the demo backend tests: a fresh firm and a real-socket client per test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from demo_backend import Firm, generate_firm, make_app

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def auth(user_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{user_id}"}


@pytest.fixture
def firm() -> Firm:
    return generate_firm()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, firm: Firm) -> TestClient[Any, Any]:
    return await aiohttp_client(make_app(firm))
