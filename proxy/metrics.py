"""Prometheus metrics, on a registry of the app's own (no module-level state).

Labels come from closed sets only: route templates, rule and action names, statuses, modes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

# Envoy's and Prometheus' usual latency buckets, seconds: a policed request is ~1 ms, a crawl seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def package_version() -> str:
    try:
        return version("redaction-proxy")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    upstream_seconds: Histogram
    decisions: Counter
    blocked: Counter
    undecidable: Counter
    facts_fetches: Counter
    policy_gap: Counter
    sentinel_scanned: Counter
    sentinel_unscanned: Counter
    request_duration: Histogram
    in_flight: Gauge
    load_shed: Counter
    facts_cache: Counter
    facts_crawls: Counter
    build_info: Gauge
    reload_successful: Gauge
    reload_timestamp: Gauge
    reloads: Counter
    shadow_differences: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            # The default collectors read the process, not a registry: sharing them is sharing nothing.
            registry.register(collector)
        return cls(
            registry,
            Counter("redaction_proxy_requests", "Requests answered", ["route", "method", "status", "mode"],
                    registry=registry),
            Histogram("redaction_proxy_upstream_seconds", "Time to the backend's response headers",
                      ["route"], registry=registry),
            Counter("redaction_proxy_decisions", "Objects a rule decided to change",
                    ["rule", "action", "mode", "route"], registry=registry),
            Counter("redaction_proxy_blocked", "Requests a rule blocked (or would have, in dry-run)",
                    ["rule", "status", "mode", "route"], registry=registry),
            Counter("redaction_proxy_undecidable", "Requests that could not be decided",
                    ["route", "mode"], registry=registry),
            Counter("redaction_proxy_facts_fetches", "Backend requests made to learn facts", ["fact"],
                    registry=registry),
            # Labels are the sentinel's bounded templates (proxy/sentinel.py: Ledger), never raw paths.
            Counter("redaction_proxy_policy_gap", "Contacts hidden from the caller found where no policy "
                    "step reads (the sentinel)", ["route", "path"], registry=registry),
            Counter("redaction_proxy_sentinel_scanned", "Unpoliced JSON answers the sentinel scanned",
                    registry=registry),
            Counter("redaction_proxy_sentinel_unscanned", "Unpoliced JSON answers of a restricted caller the "
                    "sentinel could not scan, by reason", ["reason"], registry=registry),
            Histogram("redaction_proxy_request_duration_seconds",
                      "Time from a request's headers to its answer, by route template and status class",
                      ["route", "status_class"], buckets=DURATION_BUCKETS, registry=registry),
            # The multiprocess modes are how `serve --workers N` merges gauges across workers (proxy/workers.py);
            # a single process ignores them. A dead worker's live gauges go with it.
            Gauge("redaction_proxy_requests_in_flight", "Requests being handled now", registry=registry,
                  multiprocess_mode="livesum"),
            Counter("redaction_proxy_load_shed", "Requests refused with 503 because the proxy was at capacity",
                    registry=registry),
            Counter("redaction_proxy_facts_cache", "Facts cache lookups: a hit needs no backend request",
                    ["cache", "result"], registry=registry),
            Counter("redaction_proxy_facts_crawls", "Index crawls made to learn facts (each one or more pages)",
                    ["fact"], registry=registry),
            Gauge("redaction_proxy_build_info", "What is running: the package, policy and settings versions",
                  ["version", "policy_version", "settings_version", "mode"], registry=registry,
                  multiprocess_mode="livemax"),
            # Merged, 0 when any worker's last reload failed.
            Gauge("redaction_proxy_config_last_reload_successful",
                  "1 if the last reload of policies and settings succeeded, 0 if it failed", registry=registry,
                  multiprocess_mode="livemin"),
            Gauge("redaction_proxy_config_last_reload_timestamp_seconds",
                  "When policies and settings were last (re)loaded or a reload failed, Unix time",
                  registry=registry, multiprocess_mode="livemax"),
            Counter("redaction_proxy_config_reloads", "Reloads of policies and settings, by outcome",
                    ["outcome"], registry=registry),
            # Kinds are proxy.shadow.Kind; routes the templates of the two sets (or `unmatched`).
            Counter("redaction_proxy_shadow_differences", "Decisions and refusals where the candidate policy "
                    "set (--shadow-policies) differs from the live one", ["route", "rule", "kind"],
                    registry=registry),
        )

    def set_loaded(self, policy_version: str, settings_version: str, mode: str) -> None:
        """build_info names exactly one set: the one serving now.

        The series it names no longer go to 0 before they go: with --workers a worker's values live in
        a file that clear() does not touch, and a stale 1 there would name a set nobody serves.
        """
        for metric in self.build_info.collect():
            for sample in metric.samples:
                self.build_info.labels(**sample.labels).set(0)
        with warnings.catch_warnings():
            # "not implemented in multi-process mode": the zeros above are what it would have done there.
            warnings.filterwarnings("ignore", "Clearing labels", UserWarning)
            self.build_info.clear()
        self.build_info.labels(package_version(), policy_version, settings_version, mode).set(1)

    def exposition(self) -> bytes:
        """The text format without `*_created` series: they double the output and no dashboard reads them.

        prometheus_client's own switch is process-global; this filter keeps each app's registry its own.
        """
        return generate_latest(_WithoutCreated(self.registry))


class _WithoutCreated(CollectorRegistry):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():
            samples = [s for s in metric.samples if not s.name.endswith("_created")]
            if len(samples) != len(metric.samples):
                metric.samples = samples
            yield metric
