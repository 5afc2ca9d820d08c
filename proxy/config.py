"""RunConfig: every setting of `serve`, from flags or their environment variables, checked once.

Each flag `--some-name` has the variable REDACTION_PROXY_SOME_NAME; a flag given on the command line
wins over the variable. All problems are reported together.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from yarl import URL

ENV_PREFIX = "REDACTION_PROXY_"


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"


@dataclass(frozen=True, slots=True)
class Option:
    flag: str
    default: str | None
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.flag.removeprefix("--").replace("-", "_").upper()

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


SERVE_OPTIONS = (
    Option("--upstream", None, "the legacy backend's origin, scheme://host:port (required)"),
    Option("--listen", "127.0.0.1:8080", "HOST:PORT for proxied traffic"),
    Option("--admin-listen", "127.0.0.1:9090", "HOST:PORT for /healthz, /readyz, /metrics, /policies"),
    Option("--policies", None, "policy directory (default: the bundled policies)"),
    Option("--settings", None, "settings file: who has which visibility setting (required)"),
    Option("--mode", "enforce", "enforce | dry-run"),
    Option("--public-origin", None, "origin clients use to reach the proxy, for paging links and "
           "Location (default: the request's own scheme and Host)"),
    Option("--connect-timeout", "5", "seconds to connect to the backend"),
    Option("--upstream-headers-timeout", "30", "seconds for the backend to send response headers"),
    Option("--upstream-idle-timeout", "30", "seconds the backend may stay silent mid-body"),
    Option("--request-timeout", "60", "seconds for a whole policed request"),
    Option("--client-header-timeout", "10", "seconds a client may take to send its request headers"),
    Option("--client-body-timeout", "30", "seconds a client may take to send a request body"),
    Option("--max-write-body", "1048576", "largest checked request body, bytes (413 above)"),
    Option("--max-show-body", "33554432", "largest single-object policed response, bytes (502 above)"),
    Option("--max-element", "8388608", "largest record in a streamed policed index, bytes (502 above)"),
    Option("--upstream-connections", "100", "most connections to the backend at once"),
    Option("--max-in-flight", "1024", "most requests handled at once; beyond it 503 at once (load shedding)"),
    Option("--facts-ttl", "60", "seconds facts about a caller are cached"),
    Option("--facts-cache-size", "10000", "most callers whose facts are cached"),
    Option("--shutdown-grace", "30", "seconds in-flight requests may take to finish after SIGTERM"),
    Option("--gzip-level", "1", "gzip level for policed bodies when the client accepts gzip"),
    Option("--log-level", "info", "debug | info | warning"),
    Option("--watch-interval", "5", "seconds between checks of the policy and settings files for changes "
           "(a ConfigMap update included), reloading them when they change; 0 turns watching off"),
)


@dataclass(frozen=True, slots=True)
class RunConfig:
    upstream: URL
    listen: tuple[str, int]
    admin_listen: tuple[str, int]
    policies: Path | None
    settings: Path
    mode: Mode
    public_origin: URL | None
    connect_timeout: float
    upstream_headers_timeout: float
    upstream_idle_timeout: float
    request_timeout: float
    client_header_timeout: float
    client_body_timeout: float
    max_write_body: int
    max_show_body: int
    max_element: int
    upstream_connections: int
    max_in_flight: int
    facts_ttl: float
    facts_cache_size: int
    shutdown_grace: float
    gzip_level: int
    log_level: str
    watch_interval: float = 5.0


class ConfigValueError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    for option in SERVE_OPTIONS:
        default = f" (default {option.default})" if option.default else ""
        parser.add_argument(option.flag, dest=option.dest, default=None,
                            help=f"{option.help}{default} [env {option.env}]")


def build_config(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> RunConfig:
    raw: dict[str, str | None] = {}
    for option in SERVE_OPTIONS:
        given = getattr(args, option.dest, None)
        raw[option.dest] = given if given is not None else environ.get(option.env, option.default)
    problems: list[str] = []

    def need(name: str) -> str:
        value = raw[name]
        if not value:
            problems.append(f"--{name.replace('_', '-')} is required")
            return ""
        return value

    def number(name: str, kind: type[float] | type[int], low: float = 0) -> float:
        try:
            value = kind(raw[name] or "")
        except ValueError:
            problems.append(f"--{name.replace('_', '-')}: {raw[name]!r} is not a number")
            return 1
        if value <= low:
            problems.append(f"--{name.replace('_', '-')}: must be greater than {low}")
        return value

    upstream = _origin(need("upstream"), "--upstream", problems)
    public = _origin(raw["public_origin"], "--public-origin", problems) if raw["public_origin"] else None
    try:
        mode = Mode(str(raw["mode"]))
    except ValueError:
        problems.append(f"--mode: {raw['mode']!r} is not one of enforce, dry-run")
        mode = Mode.ENFORCE
    if raw["log_level"] not in ("debug", "info", "warning"):
        problems.append(f"--log-level: {raw['log_level']!r} is not one of debug, info, warning")
    gzip_level = int(number("gzip_level", int, -1))
    if not 0 <= gzip_level <= 3:
        problems.append("--gzip-level: must be 0..3 (isal's levels)")
    config = RunConfig(
        upstream=upstream,
        listen=_host_port(raw["listen"] or "", "--listen", problems),
        admin_listen=_host_port(raw["admin_listen"] or "", "--admin-listen", problems),
        policies=Path(raw["policies"]) if raw["policies"] else None,
        settings=Path(need("settings")),
        mode=mode,
        public_origin=public,
        connect_timeout=number("connect_timeout", float),
        upstream_headers_timeout=number("upstream_headers_timeout", float),
        upstream_idle_timeout=number("upstream_idle_timeout", float),
        request_timeout=number("request_timeout", float),
        client_header_timeout=number("client_header_timeout", float),
        client_body_timeout=number("client_body_timeout", float),
        max_write_body=int(number("max_write_body", int)),
        max_show_body=int(number("max_show_body", int)),
        max_element=int(number("max_element", int)),
        upstream_connections=int(number("upstream_connections", int)),
        max_in_flight=int(number("max_in_flight", int)),
        facts_ttl=number("facts_ttl", float),
        facts_cache_size=int(number("facts_cache_size", int)),
        shutdown_grace=number("shutdown_grace", float),
        gzip_level=gzip_level,
        log_level=raw["log_level"] or "info",
        watch_interval=number("watch_interval", float, -1),
    )
    if config.watch_interval < 0:
        problems.append("--watch-interval: must be 0 (off) or more")
    if config.listen == config.admin_listen:
        problems.append("--admin-listen must not share the proxied traffic's port")
    if problems:
        raise ConfigValueError(problems)
    return config


def _origin(text: str, flag: str, problems: list[str]) -> URL:
    url = URL(text) if text else URL()
    if text and (url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/")
                 or url.query_string or url.fragment):
        problems.append(f"{flag}: {text!r} must be an origin like http://host:port")
    return url.origin() if text and url.host else url


def _host_port(text: str, flag: str, problems: list[str]) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.append(f"{flag}: {text!r} must be HOST:PORT")
        return ("", 0)
    return host.strip("[]"), int(port)
