"""RunConfig: every setting of `serve`, from flags or their environment variables, checked once.

Each flag `--some-name` has the variable REDACTION_PROXY_SOME_NAME; a flag given on the command line
wins over the variable. All problems are reported together, each naming the flag or variable it came from.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from yarl import URL

from .effects import DRY_RUN, ENFORCE, Effects
from .sentinel import SentinelMode

ENV_PREFIX = "REDACTION_PROXY_"


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"

    @property
    def effects(self) -> Effects:
        """What this mode applies (proxy/effects.py): the one value the request path asks."""
        return ENFORCE if self is Mode.ENFORCE else DRY_RUN


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

    @property
    def metavar(self) -> str:
        name = self.flag.removeprefix("--")
        for words, metavar in _METAVARS:
            if any(w in name for w in words):
                return metavar
        return "N"


_METAVARS = (  # first match wins
    (("etag-key",), "SECRET"), (("ready-requires",), "on|off"), (("sentinel-max", "buffer-chunked"), "BYTES"),
    (("sentinel",), "off|report|redact"), (("native",), "auto|require|off"), (("interval",), "SECONDS"),
    (("openapi",), "FILE"),
    (("listen",), "HOST:PORT"), (("timeout", "ttl", "grace"), "SECONDS"), (("body", "element"), "BYTES"),
    (("upstream-ca", "cert", "key", "settings"), "FILE"), (("policies",), "DIR"), (("connections",), "N"),
    (("upstream", "origin"), "URL"), (("ready",), "on|off"), (("mode",), "enforce|dry-run"), (("log-level",), "LEVEL"),
    (("sample",), "RATE"), (("format",), "table|json"), (("workers",), "N|auto"),
)


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
    Option("--request-timeout", "60", "seconds from a policed request's arrival to the start of its answer "
           "(504 beyond; the body then streams under --upstream-idle-timeout)"),
    Option("--client-header-timeout", "10", "seconds a client may take to send its request headers"),
    Option("--client-body-timeout", "30", "seconds a client may take to send a request body"),
    Option("--max-write-body", "1048576", "largest checked request body, bytes (413 above)"),
    Option("--max-show-body", "33554432", "largest single-object policed response, bytes (502 above)"),
    Option("--max-element", "8388608", "largest record in a streamed policed index, bytes (502 above)"),
    Option("--buffer-chunked-index", "1048576", "a policed index sent without Content-Length is read whole up to "
           "this many bytes (one parse, one dump: cheaper than record by record), then streams; 0: it streams"),
    Option("--upstream-connections", "100", "most connections to the backend at once"),
    Option("--max-in-flight", "1024", "most requests handled at once; beyond it 503 at once (load shedding)"),
    Option("--facts-ttl", "60", "seconds facts about a caller are cached"),
    Option("--facts-cache-size", "10000", "most callers whose facts are cached"),
    Option("--shutdown-grace", "30", "seconds in-flight requests may take to finish after SIGTERM"),
    Option("--gzip-level", "1", "gzip level for policed bodies when the client accepts gzip"),
    Option("--log-level", "info", "debug | info | warning"),
    Option("--ready-requires-upstream", "on", "on: /readyz is 503 while the backend refuses connections "
           "(sidecar); off: /readyz reflects only the proxy's own state (gateway)"),
    Option("--trusted-hops", "0", "X-Forwarded-For entries (counted from the right) set by trusted proxies in "
           "front of this one: they are kept and the peer appended; 0 replaces the header with the peer"),
    Option("--upstream-ca", None, "PEM file of the CAs trusted for an https --upstream (default: the system's)"),
    Option("--upstream-cert", None, "PEM client certificate presented to an https --upstream (with --upstream-key)"),
    Option("--upstream-key", None, "PEM private key of --upstream-cert"),
    Option("--etag-key", None, "secret key of the proxy's ETags, shared by replicas so a tag one gave "
           "verifies at another (at least 32 characters; default: a random key per process, so If-Match "
           "with another replica's tag fails its precondition)"),
    Option("--sentinel", "redact", "off | report | redact: contacts hidden from a restricted caller in "
           "the JSON answers of endpoints no policy covers are counted and logged (report), and stubbed "
           "(redact, enforce mode only)"),
    Option("--native", "auto", "auto | require | off: policed index records are decided on their bytes by "
           "the compiled scanner (proxy/_scan) where it loaded (auto; said at start), must be (require: "
           "start fails without it), or always by the pure-Python path (off)"),
    Option("--sentinel-max-body", "4194304", "largest unpoliced JSON answer the sentinel scans, bytes "
           "(larger ones are relayed unscanned and counted)"),
    Option("--decision-log-sample", "0", "share of requests (0..1) whose every decision is also logged as its own "
           "line; each request always gets one summary line (at --log-level debug every decision is logged)"),
    Option("--decisions-ring", "1000", "how many recent policed requests /decisions/{request_id} on the admin "
           "listener can explain (0: none)"),
    Option("--watch-interval", "5", "seconds between checks of the policy and settings files for changes "
           "(a ConfigMap update included), reloading them when they change; 0 turns watching off"),
    Option("--shadow-policies", None, "a candidate policy directory decided beside the live one on the same "
           "requests and answers, never applied: its differences are counted, logged and reported "
           "(default: no candidate; with only --shadow-settings, the live policies)"),
    Option("--shadow-settings", None, "the candidate's settings file (default: --settings); given alone, it "
           "shadows a settings change under the live policies"),
    Option("--workers", "1", "processes serving --listen together (SO_REUSEPORT; auto: one per CPU this process "
           "may run on); above 1 a supervisor starts them, serves the admin listener for all of them and "
           "restarts one that dies (README: Every core)"),
)
MIN_ETAG_KEY = 32
MAX_WORKERS = 256


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
    buffer_chunked_index: int
    upstream_connections: int
    max_in_flight: int
    facts_ttl: float
    facts_cache_size: int
    shutdown_grace: float
    gzip_level: int
    log_level: str
    ready_requires_upstream: bool = True
    trusted_hops: int = 0
    upstream_ssl: ssl.SSLContext | None = None
    etag_key: bytes | None = field(default=None, repr=False)  # a secret: never in a repr or a log line
    sentinel: SentinelMode = SentinelMode.REDACT
    sentinel_max_body: int = 4194304
    native: str = "auto"
    decision_log_sample: float = 0.0
    decisions_ring: int = 1000
    watch_interval: float = 5.0
    shadow_policies: Path | None = None
    shadow_settings: Path | None = None
    workers: int = 1

    @property
    def shadowing(self) -> bool:
        return self.shadow_policies is not None or self.shadow_settings is not None


class ConfigValueError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    """Every option as a flag whose help names its default and its variable; values stay None when
    not given, so `resolve` can tell a flag from a variable from a default."""
    for option in options:
        default = f" (default {option.default})" if option.default else ""
        parser.add_argument(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                            help=f"{option.help}{default} [env {option.env}]")


def resolve(
    options: tuple[Option, ...], args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each option's raw value (flag, else variable, else default) and the name to blame it on:
    the flag when it was given, the variable when the value came from the environment."""
    raw: dict[str, str | None] = {}
    names: dict[str, str] = {}
    for option in options:
        given = getattr(args, option.dest, None)
        if given is not None:
            raw[option.dest], names[option.dest] = given, option.flag
        elif option.env in environ:
            raw[option.dest], names[option.dest] = environ[option.env], option.env
        else:
            raw[option.dest], names[option.dest] = option.default, option.flag
    return raw, names


# Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_8080_TCP_ADDR`... for every Service in
# the namespace: a Service named redaction-proxy yields REDACTION_PROXY_* variables nobody typed.
_SERVICE_LINK = re.compile(
    r"REDACTION_PROXY_(SERVICE_(HOST|PORT)(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)\Z")


def unknown_variables(environ: Mapping[str, str], known: frozenset[str]) -> list[str]:
    """One line per REDACTION_PROXY_* variable no command reads, with the closest real one: an
    operator's typo must not be silently ignored."""
    lines = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or _SERVICE_LINK.match(name):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
        lines.append(f"{name}: not a redaction-proxy variable{hint}")
    return lines


def build_config(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> RunConfig:
    raw, names = resolve(SERVE_OPTIONS, args, environ)
    problems: list[str] = []

    def need(name: str) -> str:
        value = raw[name]
        if not value:
            problems.append(f"{names[name]} is required")
            return ""
        return value

    def number(name: str, kind: type[float] | type[int], low: float = 0) -> float:
        try:
            value = kind(raw[name] or "")
        except ValueError:
            problems.append(f"{names[name]}: {raw[name]!r} is not a number")
            return 1
        if not math.isfinite(value) or value <= low:  # nan <= low is false: refused by name
            problems.append(f"{names[name]}: must be a finite number greater than {low}")
        return value

    upstream = _origin(need("upstream"), names["upstream"], problems)
    public = _origin(raw["public_origin"], names["public_origin"], problems) if raw["public_origin"] else None
    try:
        mode = Mode(str(raw["mode"]))
    except ValueError:
        problems.append(f"{names['mode']}: {raw['mode']!r} is not one of enforce, dry-run")
        mode = Mode.ENFORCE
    try:
        sentinel = SentinelMode(str(raw["sentinel"]))
    except ValueError:
        problems.append(f"{names['sentinel']}: {raw['sentinel']!r} is not one of off, report, redact")
        sentinel = SentinelMode.REDACT
    if raw["native"] not in ("auto", "require", "off"):
        problems.append(f"{names['native']}: {raw['native']!r} is not one of auto, require, off")
    if raw["log_level"] not in ("debug", "info", "warning"):
        problems.append(f"{names['log_level']}: {raw['log_level']!r} is not one of debug, info, warning")
    gzip_level = int(number("gzip_level", int, -1))
    if not 0 <= gzip_level <= 3:
        problems.append(f"{names['gzip_level']}: must be 0..3 (isal's levels)")
    ready = raw["ready_requires_upstream"]
    if ready not in ("on", "off"):
        problems.append(f"{names['ready_requires_upstream']}: {ready!r} is not one of on, off")
    config = RunConfig(
        upstream=upstream,
        listen=host_port(raw["listen"] or "", names["listen"], problems),
        admin_listen=host_port(raw["admin_listen"] or "", names["admin_listen"], problems),
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
        buffer_chunked_index=int(number("buffer_chunked_index", int, -1)),
        upstream_connections=int(number("upstream_connections", int)),
        max_in_flight=int(number("max_in_flight", int)),
        facts_ttl=number("facts_ttl", float),
        facts_cache_size=int(number("facts_cache_size", int)),
        shutdown_grace=number("shutdown_grace", float),
        gzip_level=gzip_level,
        log_level=raw["log_level"] or "info",
        ready_requires_upstream=ready != "off",
        trusted_hops=int(number("trusted_hops", int, -1)),
        upstream_ssl=_upstream_ssl(upstream, raw, names, problems),
        etag_key=_etag_key(raw["etag_key"], names["etag_key"], problems),
        sentinel=sentinel,
        sentinel_max_body=int(number("sentinel_max_body", int)),
        native=str(raw["native"]),
        decision_log_sample=_rate(raw["decision_log_sample"], names["decision_log_sample"], problems),
        decisions_ring=int(number("decisions_ring", int, -1)),
        watch_interval=number("watch_interval", float, -1),
        shadow_policies=Path(raw["shadow_policies"]) if raw["shadow_policies"] else None,
        shadow_settings=Path(raw["shadow_settings"]) if raw["shadow_settings"] else None,
        workers=_workers(raw["workers"], names["workers"], problems),
    )
    if config.watch_interval < 0:
        problems.append(f"{names['watch_interval']}: must be 0 (off) or more")
    if config.listen == config.admin_listen:
        problems.append(f"{names['admin_listen']} must not share the proxied traffic's port")
    if problems:
        raise ConfigValueError(problems)
    return config


def _is_a_file(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # too long a name, a NUL: not a path anyone gave
        return False


def _etag_key(text: str | None, name: str, problems: list[str]) -> bytes | None:
    if text is None:
        return None
    if len(text) < MIN_ETAG_KEY:
        problems.append(f"{name}: must be at least {MIN_ETAG_KEY} characters")  # never quoted: a secret
    elif _is_a_file(text):
        # The key is the secret itself: a path here (a mounted secret's file name) would make a public
        # string the key, and the proxy's tags an oracle for the backend's etags.
        problems.append(f"{name}: is the name of a file; give the key itself (e.g. from a Secret's env)")
    return text.encode("utf-8", "surrogateescape")


def _origin(text: str, flag: str, problems: list[str]) -> URL:
    try:
        url = URL(text) if text else URL()
        port = url.port  # yarl checks the port only when it is read
    except ValueError:
        url, port = URL(), None
    if text and (url.scheme not in ("http", "https") or not url.host or port is None or url.path not in ("", "/")
                 or url.query_string or url.fragment):
        problems.append(f"{flag}: {text!r} must be an origin like http://host:port")
        return URL()
    return url.origin() if text and url.host else url


def _upstream_ssl(
    upstream: URL, raw: Mapping[str, str | None], names: Mapping[str, str], problems: list[str]
) -> ssl.SSLContext | None:
    """The TLS context for an https backend: the system's CAs or --upstream-ca, and a client
    certificate when one is given. None (aiohttp's default verification) when no TLS flag is set."""
    ca, cert, key = raw["upstream_ca"], raw["upstream_cert"], raw["upstream_key"]
    if not (ca or cert or key):
        return None
    given = [names[n] for n in ("upstream_ca", "upstream_cert", "upstream_key") if raw[n]]
    if upstream.scheme != "https":
        problems.append(f"{', '.join(given)}: need an https {names['upstream']} (it is {str(upstream)!r})")
        return None
    if bool(cert) != bool(key):
        problems.append(f"{names['upstream_cert']} and {names['upstream_key']} go together")
        return None
    files = ("upstream_ca", "upstream_cert", "upstream_key")
    missing = [f"{names[n]}: {raw[n]!r} is not a readable file" for n in files
               if raw[n] and not os.access(str(raw[n]), os.R_OK)]
    if missing:
        problems.extend(missing)
        return None
    try:
        context = ssl.create_default_context(cafile=ca or None)
        if cert and key:
            # An encrypted key would make OpenSSL prompt on the terminal; it is refused instead.
            context.load_cert_chain(cert, key, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"{', '.join(given)}: cannot load: {exc}")
        return None
    return context


def host_port(text: str, flag: str, problems: list[str]) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.append(f"{flag}: {text!r} must be HOST:PORT")
        return ("", 0)
    return host.strip("[]"), int(port)


def _workers(text: str | None, name: str, problems: list[str]) -> int:
    """A whole number of worker processes, or `auto`: the CPUs this process may run on (its affinity,
    which a container's cpuset narrows), else the machine's count."""
    if text == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # no affinity call on this platform
            return max(1, os.cpu_count() or 1)
    if text is None or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_WORKERS:
        problems.append(f"{name}: {text!r} is not auto nor a whole number from 1 to {MAX_WORKERS}")
        return 1
    return int(text)


def _rate(text: str | None, name: str, problems: list[str]) -> float:
    try:
        rate = float(text or "")
    except ValueError:
        problems.append(f"{name}: {text!r} is not a number")
        return 0.0
    if not 0 <= rate <= 1:
        problems.append(f"{name}: must be between 0 and 1")
        return 0.0
    return rate
