"""The rollout report: what enforcement changes (or would change), for whom and where, built from the
same events the proxy logs, so `/report` (live) and `redaction-proxy report LOG...` (offline, any number
of replicas) are one aggregation. Pure and bounded whatever the traffic.

Memory bounds: rows are keyed by route x rule x action x outcome (closed sets from the policies; capped
at MAX_ROWS anyway, since offline input is arbitrary text); each row keeps its distinct user ids exactly
up to USERS_CAP and then says "at least USERS_CAP" (`users_capped`), and the last EXAMPLES request ids.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_ROWS = 4096
USERS_CAP = 1000        # distinct users counted exactly per row, then "at least"
TOTAL_USERS_CAP = 10000
EXAMPLES = 3            # example request ids kept per row (the most recent)
PATHS_PER_ENTRY = 5     # JSON paths a request's summary line samples per rule x action
MAX_VERSIONS = 16
_RECENT_IDS = 64        # requests remembered to count an affected request once across its lines
_UNPOLICED = frozenset({"passthrough", "invalid", "load_shed"})
# A request the proxy answered with an error of its own on a policed route, other than a rule's
# block (those are rows of their own) and a client that went away.
_NOT_REFUSALS = frozenset({"ClientGoneError"})


def outcome_of(action: str, mode: str) -> str:
    """What a response decision did (enforce) or would do (dry-run) to the record or object."""
    done = "dropped" if action == "filter_contacts" else "redacted"
    return done if mode == "enforce" else f"would_{'drop' if done == 'dropped' else 'redact'}"


class BoundedSet:
    """Distinct values, exact up to `cap`; past it only "at least cap" is known (`capped`)."""

    __slots__ = ("cap", "capped", "values")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.values: set[Any] = set()
        self.capped = False

    def add(self, value: Any) -> None:
        if value is None or value in self.values:
            return
        if len(self.values) >= self.cap:
            self.capped = True
            return
        self.values.add(value)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class Row:
    records: int = 0        # objects decided (redacted or dropped), or rule checks failed (blocks)
    requests: int = 0       # requests this row touched
    users: BoundedSet = field(default_factory=lambda: BoundedSet(USERS_CAP))
    examples: deque[str] = field(default_factory=lambda: deque(maxlen=EXAMPLES))
    last_request: str | None = None

    def count(self, request_id: str | None, user_id: Any, records: int) -> None:
        self.records += records
        if request_id is None or request_id != self.last_request:
            self.requests += 1
            if request_id is not None:
                self.examples.append(request_id)
        self.last_request = request_id
        self.users.add(user_id)


class Report:
    """Counters since a start or a reset. `add` takes one event, as logged (a dict)."""

    def __init__(self, since: str | None = None) -> None:
        self.reset(since)

    def reset(self, since: str | None = None) -> None:
        self.since = since
        self.first_seen: str | None = None
        self.last_seen: str | None = None
        self.requests = 0
        self.policed = 0
        self.rows: dict[tuple[str, str, str, str], Row] = {}
        self.refusals: dict[tuple[str, str], Row] = {}  # (route, outcome): undecidable or refused
        self.shadow: dict[tuple[str, str, str], Row] = {}  # (route, rule, kind): the candidate set differs
        self.shadow_versions: set[str] = set()
        self.users = BoundedSet(TOTAL_USERS_CAP)
        self.modes: set[str] = set()
        self.versions: set[str] = set()
        self.affected = 0
        self.overflow = 0  # events not counted because MAX_ROWS was reached
        self.unreadable = 0  # offline: lines that were not a JSON object
        self._recent: deque[str] = deque(maxlen=_RECENT_IDS)

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        if kind not in ("decisions", "blocked", "request", "shadow"):
            return
        stamp = event.get("timestamp")
        if isinstance(stamp, str):
            self.first_seen = stamp if self.first_seen is None else min(self.first_seen, stamp)
            self.last_seen = stamp if self.last_seen is None else max(self.last_seen, stamp)
        mode = str(event.get("mode", "enforce"))
        route = str(event.get("route", "invalid"))
        request_id = _text(event.get("request_id"))
        user_id = event.get("user_id")
        if kind == "request":
            self._request(event, mode, route, request_id, user_id)
            return
        if kind == "shadow":
            self._shadow(event, request_id, user_id)
            return
        self._affected(request_id, user_id)
        if kind == "decisions":
            for entry in event.get("decided") or ():
                if isinstance(entry, Mapping):
                    action = str(entry.get("action"))
                    key = (route, str(entry.get("rule")), action, str(entry.get("outcome") or outcome_of(action, mode)))
                    records = entry.get("records")
                    self._count(self.rows, key, request_id, user_id, records if isinstance(records, int) else 0)
        else:
            outcome = str(event.get("outcome") or ("refused" if mode == "enforce" else "would_refuse"))
            key = (route, str(event.get("rule")), str(event.get("action")), outcome)
            self._count(self.rows, key, request_id, user_id, 1)

    def add_all(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def _request(self, event: Mapping[str, Any], mode: str, route: str, request_id: str | None, user_id: Any) -> None:
        self.requests += 1
        self.modes.add(mode)
        version = event.get("policy_version")
        if isinstance(version, str) and len(self.versions) < MAX_VERSIONS:
            self.versions.add(version)
        if route in _UNPOLICED or route.startswith("passthrough:"):  # a relayed request's log line names its segment
            return
        self.policed += 1
        error = event.get("error")
        if event.get("undecidable"):
            outcome = "undecidable_passed_on" if mode != "enforce" else "undecidable"
        elif isinstance(error, str) and error not in _NOT_REFUSALS and not event.get("blocked"):
            outcome = f"refused:{error}"
        else:
            return
        self._affected(request_id, user_id)
        self._count(self.refusals, (route, outcome), request_id, user_id, 1)

    def _shadow(self, event: Mapping[str, Any], request_id: str | None, user_id: Any) -> None:
        """What the candidate set would have done otherwise: hypothetical, so not counted as affected."""
        version = event.get("shadow_policy_version")
        if isinstance(version, str) and len(self.shadow_versions) < MAX_VERSIONS:
            self.shadow_versions.add(version)
        for entry in event.get("differences") or ():
            if isinstance(entry, Mapping):
                records = entry.get("records")
                key = (str(entry.get("route")), str(entry.get("rule")), str(entry.get("kind")))
                self._count(self.shadow, key, request_id, user_id, records if isinstance(records, int) else 0)

    def _affected(self, request_id: str | None, user_id: Any) -> None:
        self.users.add(user_id)
        if request_id is not None and request_id in self._recent:
            return
        self.affected += 1
        if request_id is not None:
            self._recent.append(request_id)

    def _count(self, rows: dict[Any, Row], key: Any, request_id: str | None, user_id: Any, records: int) -> None:
        row = rows.get(key)
        if row is None:
            if len(self.rows) + len(self.refusals) + len(self.shadow) >= MAX_ROWS:
                self.overflow += 1
                return
            row = rows[key] = Row()
        row.count(request_id, user_id, records)

    def snapshot(self, *, mode: str | None = None, policy_version: str | None = None) -> dict[str, Any]:
        """The report as plain JSON data. `mode` and `policy_version`: the live proxy's own, named even
        before any request was seen; offline they are what the log lines said (or "mixed")."""
        modes = self.modes | ({mode} if mode else set())
        versions = self.versions | ({policy_version} if policy_version else set())
        rows = [_row(row, route=k[0], rule=k[1], action=k[2], outcome=k[3]) for k, row in sorted(self.rows.items())]
        refusals = [_row(row, route=k[0], outcome=k[1]) for k, row in sorted(self.refusals.items())]
        totals: dict[str, int] = {"requests": self.requests, "policed_requests": self.policed,
                                  "affected_requests": self.affected, "users": len(self.users)}
        for name, outcomes in (("redacted", ("redacted", "would_redact")), ("dropped", ("dropped", "would_drop")),
                               ("refused", ("refused", "would_refuse"))):
            totals[name] = sum(r["records"] for r in rows if r["outcome"] in outcomes)
        totals["undecidable_or_refused"] = sum(r["requests"] for r in refusals)
        shadow = [_row(row, route=k[0], rule=k[1], kind=k[2]) for k, row in sorted(self.shadow.items())]
        totals["shadow_differences"] = sum(r["records"] for r in shadow)
        return {
            "mode": _one(modes),
            "policy_version": _one(versions),
            "since": self.since or self.first_seen,
            "until": self.last_seen if self.since is None else now_iso(),
            "rows": rows,
            "undecidable_or_refused": refusals,
            "shadow_policy_version": _one(self.shadow_versions),
            "shadow_differences": shadow,
            "totals": totals,
            "users_capped": self.users.capped,
            "overflow_events": self.overflow,
            "unreadable_lines": self.unreadable,
        }


def summarise(tally: Iterable[tuple[str, str, int, list[str]]], mode: str) -> list[dict[str, Any]]:
    """A request's decisions as its one summary line holds them: per rule x action, the count and the
    first PATHS_PER_ENTRY JSON paths (several steps may share a rule and an action)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for rule, action, n, paths in tally:
        entry = merged.setdefault((rule, action), {"rule": rule, "action": action,
                                                    "outcome": outcome_of(action, mode), "records": 0, "paths": []})
        entry["records"] += n
        room = PATHS_PER_ENTRY - len(entry["paths"])
        if room > 0:
            entry["paths"].extend(paths[:room])
    return list(merged.values())


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _row(row: Row, **key: str) -> dict[str, Any]:
    return {**key, "records": row.records, "requests": row.requests, "users": len(row.users),
            "users_capped": row.users.capped, "examples": list(row.examples)}


def _one(values: set[str]) -> str | None:
    if not values:
        return None
    return next(iter(values)) if len(values) == 1 else "mixed"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
