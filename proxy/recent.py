"""The decisions of the last N policed requests, by request id, for `/decisions/{request_id}`: route,
user id, and each decision's rule, action, JSON path and object id (never a value). Bounded: N requests,
at most PER_REQUEST decisions each (the rest counted as `truncated`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

PER_REQUEST = 500


@dataclass(slots=True)
class Trail:
    """What one request decided and refused, kept as it goes (on the request's Outcome)."""

    decisions: list[tuple[str, str, str, int | None]] = field(default_factory=list)  # rule, action, path, id
    refusals: list[tuple[str, str, int, int | None]] = field(default_factory=list)   # rule, action, status, id
    truncated: int = 0

    def refused(self, rule: str, action: str, status: int, object_id: int | None) -> None:
        if len(self.refusals) >= PER_REQUEST:
            self.truncated += 1
            return
        self.refusals.append((rule, action, status, object_id))


@dataclass(frozen=True, slots=True)
class Entry:
    """One request as the ring keeps it: compact until someone asks."""

    route: str
    method: str
    user_id: int | None
    mode: str
    status: int
    policy_version: str
    trail: Trail

    def describe(self, request_id: str) -> dict[str, Any]:
        """As `/decisions/{request_id}` serves it."""
        t = self.trail
        return {
            "request_id": request_id, "route": self.route, "method": self.method, "user_id": self.user_id,
            "mode": self.mode, "status": self.status, "policy_version": self.policy_version,
            "decisions": [{"rule": r, "action": a, "path": p, "object_id": i} for r, a, p, i in t.decisions],
            "refused": [{"rule": r, "action": a, "status": s, "object_id": i} for r, a, s, i in t.refusals],
            "truncated": t.truncated,
        }


class RecentDecisions:
    """A ring of the last `size` requests; a newer request with a repeated id replaces the older."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def add(self, request_id: str, entry: Entry) -> None:
        if self.size <= 0:
            return
        self._entries.pop(request_id, None)
        self._entries[request_id] = entry
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, request_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(request_id)
        return entry.describe(request_id) if entry is not None else None

    def __len__(self) -> int:
        return len(self._entries)
