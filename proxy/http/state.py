"""What the app holds under typed keys: the run config, the live policy/settings pair, services."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..config import RunConfig
from ..decide import PlanCache
from ..effects import Effects
from ..facts.service import FactsService
from ..facts.settings import Settings
from ..metrics import Metrics
from ..policy.model import PolicySet
from ..recent import RecentDecisions, Trail
from ..report import Report
from ..sentinel import Ledger
from ..shadow import ShadowTally
from .upstream import Upstream


@dataclass(frozen=True, slots=True)
class Loaded:
    """A policy set and settings compiled together; swapped as one on reload."""

    policies: PolicySet
    settings: Settings
    settings_version: str  # a content hash of the settings file, as PolicySet.version is of the policies
    plans: PlanCache = field(default_factory=PlanCache, compare=False)
    # --shadow-policies/--shadow-settings: a candidate decided beside this set, never applied. Held
    # here so a request takes both with one read of Live.current, and a reload swaps them together.
    shadow: Loaded | None = None


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """How the last (re)load went: a failed one keeps the old set serving, and says so here."""

    ok: bool
    at: float  # Unix time
    trigger: str  # start | signal | watch
    problems: tuple[str, ...] = ()


@dataclass(slots=True)
class Live:
    """The one mutable cell: requests take `current` once, so each is decided by one version."""

    current: Loaded
    reload: ReloadStatus = field(default_factory=lambda: ReloadStatus(True, time.time(), "start"))
    shadow_reload: ReloadStatus | None = None  # how the candidate's last reload went (None: no candidate)


@dataclass(slots=True)
class InFlight:
    """How many requests are being handled; past the limit new ones are shed at once with 503."""

    limit: int
    count: int = 0
    draining: bool = False  # SIGTERM came: /readyz answers 503 until the last request ends


@dataclass(frozen=True, slots=True)
class Services:
    config: RunConfig
    live: Live
    upstream: Upstream
    facts: FactsService
    metrics: Metrics
    log: Any
    in_flight: InFlight
    etag_key: bytes = field(repr=False)  # the proxy's ETag MAC key (--etag-key, or random per process)
    ledger: Ledger = field(default_factory=Ledger)  # the sentinel's labels, logged once each
    report: Report = field(default_factory=Report)  # the rollout report: since start or /report/reset
    recent: RecentDecisions = field(default_factory=lambda: RecentDecisions(1000))  # /decisions/{id}

    @property
    def effects(self) -> Effects:
        """What the mode applies: ask this, not the mode (proxy/effects.py)."""
        return self.config.mode.effects


@dataclass(slots=True)
class Outcome:
    """What the canonical request log line reports; filled in as the request goes."""

    request_id: str
    method: str
    route: str = "invalid"
    status: int = 0
    upstream_status: int | None = None
    decisions: int = 0
    blocked: str | None = None
    undecidable: str | None = None
    error: str | None = None
    user_id: int | None = None  # the caller, once who_am_i said (never the token)
    trail: Trail | None = None  # what was decided and refused, for /decisions/{id}
    shadow: ShadowTally | None = None  # where the candidate set decided otherwise (--shadow-policies)

    def shadow_of(self) -> ShadowTally:
        if self.shadow is None:
            self.shadow = ShadowTally()
        return self.shadow

    def trail_of(self) -> Trail:
        if self.trail is None:
            self.trail = Trail()
        return self.trail


SERVICES = web.AppKey("services", Services)
# Set only by `redaction-proxy test`: the sources (file:line:col) of the bindings that decided or blocked.
EXERCISED = web.AppKey("exercised", set[str])
