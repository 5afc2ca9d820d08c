"""A TTL cache with a size bound where concurrent misses for one key share one fetch.

Failures are not cached. `invalidate()` bumps a generation so a fetch already in flight when the
facts changed is not stored as fresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

T = TypeVar("T")


class SingleFlightCache(Generic[T]):
    def __init__(
        self, *, maxsize: int, ttl: float, timer: Callable[[], float] = time.monotonic,
        on_lookup: Callable[[bool], None] = lambda hit: None,
    ) -> None:
        self._cache: TTLCache[Hashable, T] = TTLCache(maxsize=maxsize, ttl=ttl, timer=timer)
        self._on_lookup = on_lookup  # hit: answered without a new fetch (cached, or joining one in flight)
        self._inflight: dict[Hashable, asyncio.Task[T]] = {}
        self._generation = 0

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        full = (self._generation, key)
        try:
            value = self._cache[full]
        except KeyError:
            pass
        else:
            self._on_lookup(True)
            return value
        task = self._inflight.get(full)
        self._on_lookup(task is not None)
        if task is None:
            # A task, not a bare await: a waiter that goes away must not cancel the others' fetch.
            task = asyncio.ensure_future(fetch())
            self._inflight[full] = task
            task.add_done_callback(lambda t: self._settle(full, t))
        return await asyncio.shield(task)

    def _settle(self, full: tuple[int, Hashable], task: asyncio.Task[T]) -> None:
        self._inflight.pop(full, None)
        if task.cancelled() or task.exception() is not None:
            return  # failures are not cached: the next request tries again
        if full[0] == self._generation:
            self._cache[full] = task.result()

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
